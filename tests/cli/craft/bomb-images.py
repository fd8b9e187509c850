#!/usr/bin/env python3
"""Writes tiny image files whose headers claim huge sizes: bomb-images.py DIR W H
DIR/bomb.png (a valid PNG signature and IHDR of W x H, one empty IDAT) and DIR/bomb.jpg
(a baseline JPEG header of W x H with minimal tables, up to its scan). Used by the Bats suite."""
import struct, sys, zlib

out, w, h = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)

png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
png += chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
open(out + "/bomb.png", "wb").write(png)

def seg(marker, data):
    return b"\xff" + bytes([marker]) + struct.pack(">H", len(data) + 2) + data

jpg = b"\xff\xd8"
jpg += seg(0xDB, b"\x00" + bytes([1] * 64))                               # DQT 0: all ones
jpg += seg(0xC0, struct.pack(">BHHB", 8, min(h, 65535), min(w, 65535), 1) + b"\x01\x11\x00")      # SOF0, 1 component
table = bytes([1] + [0] * 15) + b"\x00"                                   # one 1-bit code: symbol 0
jpg += seg(0xC4, b"\x00" + table) + seg(0xC4, b"\x10" + table)            # DHT DC 0, AC 0
jpg += seg(0xDA, b"\x01\x01\x00\x00\x3f\x00")                             # SOS
jpg += b"\x00" * 8 + b"\xff\xd9"
open(out + "/bomb.jpg", "wb").write(jpg)
