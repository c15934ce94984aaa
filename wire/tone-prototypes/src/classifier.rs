//! The tone classifier: multinomial logistic regression (softmax) over sentence
//! embeddings, its file format, its training and its cross-validation.
//!
//! `classifier.bin`, little-endian:
//!
//! ```text
//! offset  size          field
//! 0       8             CLASSIFIER_MAGIC "CLTONE\0\x02"
//! 8       4             dims    (u32)
//! 12      4             classes (u32)
//! 16      32            the model's digest, as in the measurement log
//! 48      32            SHA-256 of the training file, exactly as committed
//! 80      4·classes·dims the weights, f32, class-major
//! …       4·classes     the biases, f32
//! ```
//!
//! Training is full-batch Nesterov-accelerated gradient descent on the mean
//! cross-entropy plus an L2 penalty on the weights (not the biases). The
//! objective is strictly convex, so the result does not depend on the order
//! of the data or the start, and embeddings that differ in their last bits
//! (another CPU) give weights that differ as little. Written here rather than
//! taken from a crate: it is ~100 lines, must build for wasm32-wasip2 with no
//! dependencies (the plugin decodes the file with this crate), and the
//! machine-learning crates (linfa, smartcore) would bring ndarray and BLAS
//! bindings for one small convex problem.

/// Magic bytes opening `classifier.bin`.
pub const CLASSIFIER_MAGIC: &[u8; 8] = b"CLTONE\0\x02";
/// Bytes before the weights in `classifier.bin`.
pub const CLASSIFIER_HEADER_LEN: usize = 8 + 4 + 4 + 32 + 32;

/// A trained classifier.
#[derive(Debug, Clone, PartialEq)]
pub struct Classifier {
    /// Embedding length.
    pub dims: usize,
    /// Number of classes.
    pub classes: usize,
    /// The model's digest, as in the measurement log.
    pub model_digest: [u8; 32],
    /// SHA-256 of the training file.
    pub training_sha256: [u8; 32],
    /// `classes × dims` weights, class-major.
    pub weights: Vec<f32>,
    /// One bias per class.
    pub bias: Vec<f32>,
}

/// Training settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainParams {
    /// The L2 penalty `λ/2·‖W‖²` added to the mean cross-entropy.
    pub l2: f64,
    /// Gradient steps.
    pub iterations: usize,
}

impl Default for TrainParams {
    fn default() -> Self {
        TrainParams {
            l2: 1e-3,
            iterations: 600,
        }
    }
}

impl Classifier {
    /// Class probabilities for one embedding (softmax of `W·v + b`); `None` if
    /// `v` has the wrong length or a value that is not finite.
    pub fn probabilities(&self, v: &[f32]) -> Option<Vec<f32>> {
        if v.len() != self.dims || !v.iter().all(|x| x.is_finite()) {
            return None;
        }
        let logits: Vec<f64> = (0..self.classes)
            .map(|c| {
                let w = &self.weights[c * self.dims..(c + 1) * self.dims];
                f64::from(self.bias[c])
                    + w.iter()
                        .zip(v)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum::<f64>()
            })
            .collect();
        Some(softmax(&logits).into_iter().map(|p| p as f32).collect())
    }

    /// `classifier.bin` for this classifier.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        let (dims, classes) = match (u32::try_from(self.dims), u32::try_from(self.classes)) {
            (Ok(d), Ok(c)) if d > 0 && c > 1 => (d, c),
            _ => return Err("a classifier needs dimensions and at least two classes".into()),
        };
        if self.weights.len() != self.dims * self.classes || self.bias.len() != self.classes {
            return Err("the weights do not match the dimensions".into());
        }
        let mut out =
            Vec::with_capacity(CLASSIFIER_HEADER_LEN + 4 * (self.weights.len() + self.classes));
        out.extend_from_slice(CLASSIFIER_MAGIC);
        out.extend_from_slice(&dims.to_le_bytes());
        out.extend_from_slice(&classes.to_le_bytes());
        out.extend_from_slice(&self.model_digest);
        out.extend_from_slice(&self.training_sha256);
        for x in self.weights.iter().chain(&self.bias) {
            out.extend_from_slice(&x.to_le_bytes());
        }
        Ok(out)
    }

    /// Parses `classifier.bin`, checking the magic, the exact length and that
    /// every value is finite.
    pub fn decode(bin: &[u8]) -> Result<Classifier, String> {
        if bin.len() < CLASSIFIER_HEADER_LEN || &bin[..8] != CLASSIFIER_MAGIC {
            return Err("classifier.bin: bad header".into());
        }
        let word = |at: usize| u32::from_le_bytes([bin[at], bin[at + 1], bin[at + 2], bin[at + 3]]);
        let dims = word(8) as usize;
        let classes = word(12) as usize;
        let values = dims
            .checked_mul(classes)
            .and_then(|n| n.checked_add(classes));
        let expected = values
            .and_then(|n| n.checked_mul(4))
            .and_then(|n| n.checked_add(CLASSIFIER_HEADER_LEN));
        if dims == 0 || classes < 2 || expected != Some(bin.len()) {
            return Err(format!(
                "classifier.bin: {} bytes do not hold {classes} classes of {dims} weights",
                bin.len()
            ));
        }
        let floats: Vec<f32> = bin[CLASSIFIER_HEADER_LEN..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        if !floats.iter().all(|x| x.is_finite()) {
            return Err("classifier.bin: a weight is not a finite number".into());
        }
        let mut model_digest = [0u8; 32];
        model_digest.copy_from_slice(&bin[16..48]);
        let mut training_sha256 = [0u8; 32];
        training_sha256.copy_from_slice(&bin[48..80]);
        let (weights, bias) = floats.split_at(dims * classes);
        Ok(Classifier {
            dims,
            classes,
            model_digest,
            training_sha256,
            weights: weights.to_vec(),
            bias: bias.to_vec(),
        })
    }
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|z| (z - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

/// Trains on `vectors` (all of one length) with `labels` in `0..classes`.
/// Returns `(weights, bias)` as [`Classifier`] holds them.
pub fn train(
    vectors: &[Vec<f32>],
    labels: &[usize],
    classes: usize,
    params: TrainParams,
) -> Result<(Vec<f32>, Vec<f32>), String> {
    let n = vectors.len();
    let dims = vectors.first().map(Vec::len).unwrap_or(0);
    if n == 0 || dims == 0 || vectors.iter().any(|v| v.len() != dims) {
        return Err("training needs vectors, all of one length".into());
    }
    if labels.len() != n || labels.iter().any(|&l| l >= classes) || classes < 2 {
        return Err("every vector needs a label among the classes".into());
    }
    if !vectors.iter().flatten().all(|x| x.is_finite()) || !params.l2.is_finite() || params.l2 < 0.0
    {
        return Err("training data and the L2 penalty must be finite".into());
    }
    let x: Vec<Vec<f64>> = vectors
        .iter()
        .map(|v| v.iter().map(|&a| f64::from(a)).collect())
        .collect();
    // Parameters: classes × (dims + 1), the last column the bias.
    let width = dims + 1;
    let mut theta = vec![0.0f64; classes * width];
    let mut previous = theta.clone();
    // Step 1/L: the mean cross-entropy's gradient is ½·max‖x‖²-Lipschitz
    // (+1 for the bias), the penalty's λ.
    let max_sq = x
        .iter()
        .map(|v| v.iter().map(|a| a * a).sum::<f64>())
        .fold(0.0f64, f64::max);
    let step = 1.0 / (0.5 * (max_sq + 1.0) + params.l2);
    let mut grad = vec![0.0f64; classes * width];
    for t in 0..params.iterations {
        // Nesterov: evaluate the gradient at the look-ahead point.
        let momentum = t as f64 / (t as f64 + 3.0);
        let look: Vec<f64> = theta
            .iter()
            .zip(&previous)
            .map(|(a, b)| a + momentum * (a - b))
            .collect();
        grad.iter_mut().for_each(|g| *g = 0.0);
        for (xi, &yi) in x.iter().zip(labels) {
            let logits: Vec<f64> = (0..classes)
                .map(|c| {
                    let row = &look[c * width..(c + 1) * width];
                    row[dims] + row[..dims].iter().zip(xi).map(|(w, a)| w * a).sum::<f64>()
                })
                .collect();
            let p = softmax(&logits);
            for c in 0..classes {
                let err = (p[c] - f64::from(u8::from(c == yi))) / n as f64;
                let row = &mut grad[c * width..(c + 1) * width];
                for (g, a) in row[..dims].iter_mut().zip(xi) {
                    *g += err * a;
                }
                row[dims] += err;
            }
        }
        for c in 0..classes {
            for j in 0..dims {
                grad[c * width + j] += params.l2 * look[c * width + j];
            }
        }
        previous = std::mem::replace(
            &mut theta,
            look.iter().zip(&grad).map(|(a, g)| a - step * g).collect(),
        );
    }
    let mut weights = Vec::with_capacity(classes * dims);
    let mut bias = Vec::with_capacity(classes);
    for c in 0..classes {
        let row = &theta[c * width..(c + 1) * width];
        weights.extend(row[..dims].iter().map(|&w| w as f32));
        bias.push(row[dims] as f32);
    }
    Ok((weights, bias))
}

/// Stratified `folds`-fold cross-validation: item `i` of each class goes to
/// fold `(rank of i within its class) mod folds`, so every fold has each class
/// in proportion. Returns, for every item, the class probabilities of the
/// classifier trained on the other folds.
pub fn cross_validate(
    vectors: &[Vec<f32>],
    labels: &[usize],
    classes: usize,
    folds: usize,
    params: TrainParams,
) -> Result<Vec<Vec<f32>>, String> {
    if folds < 2 || folds > vectors.len() {
        return Err(format!(
            "cannot cross-validate {} items in {folds} folds",
            vectors.len()
        ));
    }
    let mut seen = vec![0usize; classes];
    let mut fold_of = Vec::with_capacity(labels.len());
    for &l in labels {
        let rank = seen.get_mut(l).ok_or("a label is outside the classes")?;
        fold_of.push(*rank % folds);
        *rank += 1;
    }
    let dims = vectors.first().map(Vec::len).unwrap_or(0);
    let mut out = vec![Vec::new(); vectors.len()];
    for f in 0..folds {
        let (train_x, train_y): (Vec<Vec<f32>>, Vec<usize>) = vectors
            .iter()
            .zip(labels)
            .zip(&fold_of)
            .filter(|(_, &g)| g != f)
            .map(|((v, &l), _)| (v.clone(), l))
            .unzip();
        let (weights, bias) = train(&train_x, &train_y, classes, params)?;
        let model = Classifier {
            dims,
            classes,
            model_digest: [0; 32],
            training_sha256: [0; 32],
            weights,
            bias,
        };
        for (i, v) in vectors.iter().enumerate() {
            if fold_of[i] == f {
                out[i] = model.probabilities(v).ok_or("a vector of the wrong size")?;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three separable clusters in 4 dimensions, with noise.
    fn clusters() -> (Vec<Vec<f32>>, Vec<usize>) {
        let centres = [
            [1.0, 0.0, 0.0, 0.2],
            [0.0, 1.0, 0.0, 0.2],
            [0.0, 0.0, 1.0, 0.2],
        ];
        let mut xs = Vec::new();
        let mut ys = Vec::new();
        let mut seed = 7u64;
        let mut noise = || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((seed >> 33) as f32 / (1u64 << 31) as f32 - 0.5) * 0.4
        };
        for i in 0..90 {
            let c = i % 3;
            xs.push(centres[c].iter().map(|a| a + noise()).collect());
            ys.push(c);
        }
        (xs, ys)
    }

    #[test]
    fn learns_separable_classes_and_cross_validates() {
        let (xs, ys) = clusters();
        let (weights, bias) = train(&xs, &ys, 3, TrainParams::default()).unwrap();
        let model = Classifier {
            dims: 4,
            classes: 3,
            model_digest: [1; 32],
            training_sha256: [2; 32],
            weights,
            bias,
        };
        for (x, &y) in xs.iter().zip(&ys) {
            let p = model.probabilities(x).unwrap();
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            let best = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
            assert_eq!(best, y, "{x:?} {p:?}");
        }
        let oof = cross_validate(&xs, &ys, 3, 5, TrainParams::default()).unwrap();
        let right = oof
            .iter()
            .zip(&ys)
            .filter(|(p, &y)| (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])) == Some(y))
            .count();
        assert!(right >= 85, "{right} of 90");
        // The file round-trips, and damaged files are refused.
        let bin = model.encode().unwrap();
        assert_eq!(Classifier::decode(&bin).unwrap(), model);
        assert!(Classifier::decode(&bin[..bin.len() - 1]).is_err());
        let mut nan = bin.clone();
        let at = CLASSIFIER_HEADER_LEN;
        nan[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(Classifier::decode(&nan).is_err());
        let mut magic = bin.clone();
        magic[7] = 1;
        assert!(Classifier::decode(&magic).is_err());
        assert!(model.probabilities(&[0.0; 3]).is_none());
        assert!(model.probabilities(&[f32::NAN, 0.0, 0.0, 0.0]).is_none());
    }

    #[test]
    fn the_penalty_shrinks_and_order_does_not_matter() {
        let (xs, ys) = clusters();
        let loose = train(
            &xs,
            &ys,
            3,
            TrainParams {
                l2: 1e-4,
                iterations: 400,
            },
        )
        .unwrap();
        let tight = train(
            &xs,
            &ys,
            3,
            TrainParams {
                l2: 1.0,
                iterations: 400,
            },
        )
        .unwrap();
        let norm = |w: &[f32]| w.iter().map(|a| a * a).sum::<f32>();
        assert!(norm(&tight.0) < norm(&loose.0));
        // Reversed data: the same optimum.
        let (rx, ry): (Vec<_>, Vec<_>) = xs.iter().cloned().zip(ys.iter().copied()).rev().unzip();
        let a = train(&xs, &ys, 3, TrainParams::default()).unwrap();
        let b = train(&rx, &ry, 3, TrainParams::default()).unwrap();
        let worst =
            a.0.iter()
                .zip(&b.0)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0f32, f32::max);
        assert!(worst < 1e-4, "{worst}");
    }

    #[test]
    fn bad_training_input_is_refused() {
        assert!(train(&[], &[], 3, TrainParams::default()).is_err());
        assert!(train(
            &[vec![1.0], vec![1.0, 2.0]],
            &[0, 1],
            2,
            TrainParams::default()
        )
        .is_err());
        assert!(train(&[vec![1.0]], &[5], 2, TrainParams::default()).is_err());
        assert!(train(&[vec![f32::NAN]], &[0], 2, TrainParams::default()).is_err());
        assert!(cross_validate(&[vec![1.0]], &[0], 2, 5, TrainParams::default()).is_err());
    }
}
