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

/// Splits the largest batches in two (by position: they are sorted by
/// length) until there are at least `parts` batches or none has two texts,
/// so that `parts` threads each get work.
pub fn split_for_threads(batches: &mut Vec<Vec<usize>>, parts: usize) {
    while batches.len() < parts {
        let Some((largest, len)) = batches
            .iter()
            .enumerate()
            .map(|(i, b)| (i, b.len()))
            .max_by_key(|&(i, len)| (len, std::cmp::Reverse(i)))
        else {
            return;
        };
        if len < 2 {
            return;
        }
        let tail = batches[largest].split_off(len / 2);
        batches.insert(largest + 1, tail);
    }
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
    fn splits_for_threads_until_every_thread_has_work() {
        let mut one = vec![vec![0, 1, 2, 3, 4]];
        split_for_threads(&mut one, 2);
        assert_eq!(one, vec![vec![0, 1], vec![2, 3, 4]]);
        let mut many = vec![vec![0], vec![1, 2, 3, 4], vec![5, 6]];
        split_for_threads(&mut many, 4);
        assert_eq!(many, vec![vec![0], vec![1, 2], vec![3, 4], vec![5, 6]]);
        // Already enough, or nothing left to split.
        let mut enough = vec![vec![0, 1], vec![2]];
        split_for_threads(&mut enough, 2);
        assert_eq!(enough, vec![vec![0, 1], vec![2]]);
        let mut singles = vec![vec![0], vec![1]];
        split_for_threads(&mut singles, 4);
        assert_eq!(singles, vec![vec![0], vec![1]]);
        let mut empty: Vec<Vec<usize>> = Vec::new();
        split_for_threads(&mut empty, 2);
        assert!(empty.is_empty());
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
