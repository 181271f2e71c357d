//! Splits one byte stream at boundaries chosen by the fuzz input, so that a parser
//! sees every way a transport could cut the same bytes.

/// Chunk sizes cycle through `pattern` (each entry `1 + byte`, so 1..=256 bytes); an
/// empty pattern means one chunk.
pub fn split<'a>(stream: &'a [u8], pattern: &'a [u8]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = stream;
    let mut sizes = pattern.iter().cycle();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let size = sizes.next().map_or(rest.len(), |&b| 1 + usize::from(b));
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        Some(chunk)
    })
}
