//! Serde for fixed-size byte arrays (`#[serde(with = "crate::byte_array")]`), in the same
//! encoding as serde's own `[u8; N]` (a tuple of N bytes: N raw bytes in postcard), but
//! read by one loop instead of serde's N unrolled steps per size (about 7 KB of wasm
//! for the four sizes the wire uses).

use serde::de::{Error, SeqAccess, Visitor};
use serde::ser::SerializeTuple;
use serde::{Deserializer, Serializer};

pub fn serialize<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
    let mut t = s.serialize_tuple(N)?;
    for b in bytes {
        t.serialize_element(b)?;
    }
    t.end()
}

pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
    struct Bytes<const N: usize>;
    impl<'de, const N: usize> Visitor<'de> for Bytes<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut core::fmt::Formatter) -> core::fmt::Result {
            write!(f, "{N} bytes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
            let mut out = [0u8; N];
            for (i, b) in out.iter_mut().enumerate() {
                *b = seq.next_element()?.ok_or_else(|| A::Error::invalid_length(i, &self))?;
            }
            Ok(out)
        }
    }
    d.deserialize_tuple(N, Bytes::<N>)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Ours(#[serde(with = "super")] [u8; 24], u8);
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Serdes([u8; 24], u8);

    #[test]
    fn same_bytes_as_serde_arrays_and_short_input_refused() {
        let a: [u8; 24] = core::array::from_fn(|i| (i * 7) as u8);
        let ours = postcard::to_allocvec(&Ours(a, 9)).unwrap();
        assert_eq!(ours, postcard::to_allocvec(&Serdes(a, 9)).unwrap());
        assert_eq!(ours.len(), 25);
        assert_eq!(postcard::from_bytes::<Ours>(&ours).unwrap(), Ours(a, 9));
        assert!(postcard::from_bytes::<Ours>(&ours[..20]).is_err());
    }
}
