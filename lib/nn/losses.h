// losses.h — classification losses over a batch of B rows of K classes (llm.c style: outputs
// first, then inputs, then dims; backward functions accumulate (+=) into dlogits).
//
// The losses read probabilities, not logits: the caller forms them with softmax_forward (at
// temperature 1 for the cross-entropy, at T for the soft targets), as the ViT's forward does
// for act.probs. Every backward returns the gradient with respect to the LOGITS z of the student,
// already multiplied by `scale`; a loss weighted by w and averaged over the batch passes
// scale = w / B. Forward functions return the MEAN over the B rows (0 when B <= 0) and, when
// `losses` is not null, write each row's (unweighted, undivided) loss into losses[b].
//
// Preconditions, not checked (these run once per step on every batch): labels[b] in [0,K),
// K >= 1, T > 0, smoothing in [0,1], alpha in [0,1]; probability rows sum to 1 up to rounding.
// The rows are processed in order by one thread, so every result is bitwise reproducible.
#pragma once
#include <cstdint>

namespace ufo {

// probs[b,i] = exp((logits[b,i] - m_b) / T) / sum_j exp((logits[b,j] - m_b) / T),
// m_b = max_j logits[b,j] (so no exp overflows). At T = 1 this is, bitwise, the loop that
// Model::forward (lib/nn/model.cpp) used to fill act.probs.
// probs [B,K] (=), logits [B,K]; probs may equal logits (in place).
void softmax_forward(float* probs, const float* logits, int B, int K, float T = 1.0f);

// Label-smoothed cross-entropy, PyTorch's CrossEntropyLoss(label_smoothing = s): the target of
// row b is q = (1-s) * onehot(labels[b]) + s/K and the row loss is
// -sum_i q_i * log(max(probs[b,i], 1e-30)). Returns the mean over rows, computed exactly as
// Model::loss (lib/nn/model.cpp) did (float terms, double sum): float(result) is its value.
// losses [B] (=, may be null), probs [B,K] softmax(z), labels [B]
double cross_entropy_forward(float* losses, const float* probs, const int32_t* labels, int B, int K,
                             float smoothing);
// dlogits[b,i] += scale * (probs[b,i] - q_i)   (d(row loss)/dz = p - q, since sum q = 1).
// dlogits [B,K] (+=), probs [B,K] softmax(z), labels [B]
void cross_entropy_backward(float* dlogits, const float* probs, const int32_t* labels, int B, int K,
                            float smoothing, float scale);

// Soft-target (distillation) loss of Hinton et al. (2015): with student probabilities at
// temperature T, q = softmax(z_s / T), and teacher probabilities p = softmax(z_t / T), the row
// loss is L_soft = T^2 * KL(p || q) = T^2 * sum_i p_i * (log p_i - log max(q_i, 1e-30)), where
// terms with p_i = 0 are 0 (0 log 0 = 0). Accumulated in double. Returns the mean over rows.
// The T^2 factor keeps the gradient's size roughly independent of T: see soft_target_backward.
// losses [B] (=, may be null), qs [B,K] softmax(z_s/T), pt [B,K] softmax(z_t/T)
double soft_target_forward(float* losses, const float* qs, const float* pt, int B, int K, float T);
// dlogits[b,i] += scale * T * (qs[b,i] - pt[b,i]).
// Derivation: log q_i = z_i/T - log sum_j exp(z_j/T), so d(log q_i)/dz_k = (delta_ik - q_k)/T and
//   d/dz_k [ -sum_i p_i log q_i ] = -(p_k - q_k * sum_i p_i) / T = (q_k - p_k) / T   (sum p = 1);
// sum p log p does not depend on z_s, so dL_soft/dz_k = T^2 (q_k - p_k) / T = T (q_k - p_k).
// For large T, q_k - p_k ~ ((z_k - mean z) - (v_k - mean v)) / (K T) (v = teacher logits), so
// the gradient tends to ((z_k - mean z) - (v_k - mean v)) / K, independent of T.
// The 1e-30 clamp of the forward is ignored here, as in cross_entropy_backward: this is the
// gradient of the unclamped loss, which differs from the clamped forward's only where a student
// probability is below 1e-30 (there the clamped forward is flat, the gradient still pulls).
// dlogits [B,K] (+=, w.r.t. the student logits z_s), qs [B,K] softmax(z_s/T), pt [B,K]
void soft_target_backward(float* dlogits, const float* qs, const float* pt, int B, int K, float T,
                          float scale);

// Distillation objective L = alpha * L_soft(T) + (1 - alpha) * CE_smoothed(labels, z_s), per row;
// returns the mean over rows; losses[b] (may be null) is row b's L. At T = 1, qs may be probs.
// losses [B] (=, may be null), probs [B,K] softmax(z_s), qs [B,K] softmax(z_s/T),
// pt [B,K] softmax(z_t/T), labels [B]
double distill_loss_forward(float* losses, const float* probs, const float* qs, const float* pt,
                            const int32_t* labels, int B, int K, float alpha, float T, float smoothing);
// dlogits += scale * (alpha * T * (qs - pt) + (1 - alpha) * (probs - q_smoothed)), as two passes:
// soft_target_backward(scale * alpha), then cross_entropy_backward(scale * (1 - alpha)).
// dlogits [B,K] (+=, w.r.t. z_s), the other arguments as for distill_loss_forward
void distill_loss_backward(float* dlogits, const float* probs, const float* qs, const float* pt,
                           const int32_t* labels, int B, int K, float alpha, float T, float smoothing,
                           float scale);

// Top-1 hits: the number of rows whose argmax (std::max_element: ties go to the lowest index)
// equals labels[b]. Softmax preserves the order but may round distinct logits to equal
// probabilities, so probabilities and logits can disagree on near ties; Model::loss counted on
// probabilities. scores [B,K] probabilities or logits, labels [B]
int count_correct(const float* scores, const int32_t* labels, int B, int K);

}  // namespace ufo
