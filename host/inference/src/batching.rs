//! Grouping texts into batches by token length, so that a batch pads little.

/// Indices of the texts in each batch. Texts are sorted by token length
/// (stable); a batch is closed when it holds `max_batch` texts, or when the
/// next text is longer than the batch's shortest by more than `slack(len)`
/// tokens, or when its padded size would pass `max_batch_tokens`.
pub fn group_by_length(
    lengths: &[usize],
    max_batch: usize,
    max_batch_tokens: usize,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]);
    let max_batch = max_batch.max(1);
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut current: Vec<usize> = Vec::new();
    let mut shortest = 0;
    for i in order {
        let len = lengths[i];
        let padded_tokens = len * (current.len() + 1);
        let close = !current.is_empty()
            && (current.len() >= max_batch
                || len > shortest + slack(shortest)
                || padded_tokens > max_batch_tokens);
        if close {
            batches.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            shortest = len;
        }
        current.push(i);
    }
    if !current.is_empty() {
        batches.push(current);
    }
    batches
}

/// Padding tolerated in a batch whose shortest text has `len` tokens: about
/// an eighth, at least 2 tokens.
fn slack(len: usize) -> usize {
    (len / 8).max(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_similar_lengths_and_keeps_every_index_once() {
        let lengths = [10, 40, 11, 12, 41, 3, 250, 10];
        let batches = group_by_length(&lengths, 16, 1 << 20);
        let mut seen: Vec<usize> = batches.iter().flatten().copied().collect();
        seen.sort();
        assert_eq!(seen, (0..lengths.len()).collect::<Vec<_>>());
        for b in &batches {
            let min = b.iter().map(|&i| lengths[i]).min().unwrap();
            let max = b.iter().map(|&i| lengths[i]).max().unwrap();
            assert!(max <= min + slack(min), "{b:?}");
        }
        assert_eq!(
            batches,
            vec![vec![5], vec![0, 7, 2, 3], vec![1, 4], vec![6]]
        );
    }

    #[test]
    fn respects_batch_size_and_token_caps() {
        let lengths = vec![20; 10];
        assert_eq!(
            group_by_length(&lengths, 4, 1 << 20)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            [4, 4, 2]
        );
        assert_eq!(
            group_by_length(&lengths, 16, 60)
                .iter()
                .map(Vec::len)
                .collect::<Vec<_>>(),
            [3, 3, 3, 1]
        );
        assert!(group_by_length(&[], 4, 100).is_empty());
    }
}
