//! Centrality and diversity over sentence embeddings.

/// Dot product; for L2-normalised vectors this is the cosine similarity.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Scales a vector to unit length (left as is if it is all zeros).
pub fn normalize(v: &mut [f32]) {
    let n = dot(v, v).sqrt();
    if n > 0.0 && n.is_finite() {
        v.iter_mut().for_each(|x| *x /= n);
    }
}

/// Pairwise cosine similarities of `vectors` (symmetric, 1 on the diagonal).
pub fn similarity_matrix(vectors: &[&[f32]]) -> Vec<Vec<f32>> {
    let n = vectors.len();
    let mut s = vec![vec![0.0f32; n]; n];
    for i in 0..n {
        s[i][i] = 1.0;
        for j in i + 1..n {
            let v = dot(vectors[i], vectors[j]);
            s[i][j] = v;
            s[j][i] = v;
        }
    }
    s
}

/// Cosine below which two chat sentences share nothing but register and
/// language (all-MiniLM-L6-v2 puts unrelated sentences around 0–0.15).
pub const EDGE_FLOOR: f32 = 0.1;
/// LexRank's damping factor (PageRank's 0.85).
pub const DAMPING: f32 = 0.85;

/// Continuous LexRank: PageRank over the graph whose edge weights are the
/// similarities above [`EDGE_FLOOR`] (minus the floor). Returns scores scaled
/// so the most central item has 1.
pub fn lexrank(sim: &[Vec<f32>]) -> Vec<f32> {
    let n = sim.len();
    if n == 0 {
        return Vec::new();
    }
    if n == 1 {
        return vec![1.0];
    }
    // Row-normalised transition weights.
    let mut w = vec![vec![0.0f32; n]; n];
    for i in 0..n {
        let mut row_sum = 0.0;
        for j in 0..n {
            if i != j {
                let x = (sim[i][j] - EDGE_FLOOR).max(0.0);
                w[i][j] = x;
                row_sum += x;
            }
        }
        if row_sum > 0.0 {
            w[i].iter_mut().for_each(|x| *x /= row_sum);
        } else {
            // A sentence related to nothing spreads its vote evenly.
            w[i].iter_mut().for_each(|x| *x = 1.0 / n as f32);
        }
    }
    let mut p = vec![1.0 / n as f32; n];
    for _ in 0..100 {
        let mut next = vec![(1.0 - DAMPING) / n as f32; n];
        for (i, row) in w.iter().enumerate() {
            for (j, x) in row.iter().enumerate() {
                next[j] += DAMPING * p[i] * x;
            }
        }
        let delta: f32 = next.iter().zip(&p).map(|(a, b)| (a - b).abs()).sum();
        p = next;
        if delta < 1e-6 {
            break;
        }
    }
    let max = p.iter().cloned().fold(0.0f32, f32::max);
    if max > 0.0 {
        p.iter_mut().for_each(|x| *x /= max);
    }
    p
}

/// Maximal marginal relevance: picks up to `k` items, each maximising
/// `λ·relevance − (1−λ)·(max similarity to those already picked)`. Items at
/// least `near_duplicate` similar to a picked one are never picked (they are
/// merged into it later). Returns indices in pick order.
pub fn mmr(
    relevance: &[f32],
    sim: &[Vec<f32>],
    k: usize,
    lambda: f32,
    near_duplicate: f32,
) -> Vec<usize> {
    let n = relevance.len();
    let mut picked: Vec<usize> = Vec::with_capacity(k.min(n));
    let mut max_sim = vec![f32::NEG_INFINITY; n];
    let mut available = vec![true; n];
    while picked.len() < k {
        let mut best: Option<(usize, f32)> = None;
        for i in 0..n {
            if !available[i] {
                continue;
            }
            let redundancy = if picked.is_empty() { 0.0 } else { max_sim[i] };
            let score = lambda * relevance[i] - (1.0 - lambda) * redundancy;
            if best.is_none_or(|(_, b)| score > b) {
                best = Some((i, score));
            }
        }
        let Some((chosen, _)) = best else { break };
        picked.push(chosen);
        available[chosen] = false;
        for i in 0..n {
            if available[i] {
                max_sim[i] = max_sim[i].max(sim[chosen][i]);
                if sim[chosen][i] >= near_duplicate {
                    available[i] = false;
                }
            }
        }
    }
    picked
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        normalize(&mut v);
        v
    }

    #[test]
    fn lexrank_prefers_the_hub() {
        // Three sentences around one topic and an outlier.
        let vs = [
            unit(&[1.0, 0.2, 0.0]),
            unit(&[1.0, 0.0, 0.1]),
            unit(&[0.9, 0.3, 0.1]),
            unit(&[0.0, 0.0, 1.0]),
        ];
        let refs: Vec<&[f32]> = vs.iter().map(|v| v.as_slice()).collect();
        let s = similarity_matrix(&refs);
        let r = lexrank(&s);
        assert!(r[3] < r[0] && r[3] < r[1] && r[3] < r[2], "{r:?}");
        assert!((r.iter().cloned().fold(0.0, f32::max) - 1.0).abs() < 1e-6);
    }

    #[test]
    fn mmr_skips_near_duplicates_and_diversifies() {
        let vs = [unit(&[1.0, 0.0]), unit(&[1.0, 0.01]), unit(&[0.0, 1.0])];
        let refs: Vec<&[f32]> = vs.iter().map(|v| v.as_slice()).collect();
        let s = similarity_matrix(&refs);
        let picked = mmr(&[1.0, 0.99, 0.3], &s, 3, 0.7, 0.9);
        assert_eq!(picked, vec![0, 2]);
    }

    #[test]
    fn degenerate_inputs() {
        assert!(lexrank(&[]).is_empty());
        assert_eq!(lexrank(&[vec![1.0]]), vec![1.0]);
        assert!(mmr(&[], &[], 3, 0.7, 0.9).is_empty());
        let mut z = vec![0.0, 0.0];
        normalize(&mut z);
        assert_eq!(z, vec![0.0, 0.0]);
    }
}
