//! The codec of every generated client and server: prost's, with small initial buffers.
//!
//! tonic allocates a call's encode and decode buffers up front and keeps them for as long as
//! the call lives: 8 KiB each by default. A bridge holds one `Subscribe` stream per legacy
//! connection, nearly all of them idle, and the messaging service holds the other end, so
//! those buffers were a large share of what an idle connection costs on both sides. Here they
//! start at 1 KiB and grow with the messages that need more.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Initial size (and growth step) of a call's buffers.
const BUFFER: usize = 1024;
/// tonic's default: a server stream sends ready messages in batches of up to this size.
const YIELD_THRESHOLD: usize = 32 * 1024;

/// [`ProstCodec`] with [`BUFFER`]-sized buffers.
#[derive(Debug, Clone)]
pub struct LeanCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for LeanCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for LeanCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(BUFFER, YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(BufferSettings::new(BUFFER, YIELD_THRESHOLD))
    }
}
