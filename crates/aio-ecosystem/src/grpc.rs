//! A gRPC service written by hand with tonic's core and prost (what
//! `tonic-build` would generate, without protoc): `aio.Echo` with a unary
//! method `Say` and a server-streaming method `Count`.
//!
//! The server is a `tower::Service`, served by
//! `aio::hyper::serve(&listener, TowerToHyperService::new(EchoServer))`;
//! the client is tonic's `client::Grpc` over an HTTP/2
//! [`aio::hyper::Client`], which is a `tower::Service` itself. tonic's
//! `transport` feature (which needs tokio's reactor and `Send` sockets) is
//! not used: aio-hyper is the transport.
//!
//! ```proto
//! service Echo {
//!   rpc Say(EchoRequest) returns (EchoReply);
//!   rpc Count(EchoRequest) returns (stream EchoReply);
//! }
//! message EchoRequest { string message = 1; uint32 count = 2; }
//! message EchoReply { string message = 1; uint32 index = 2; }
//! ```

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use aio::hyper::Client;
use aio::hyper::http::{self, uri::PathAndQuery};
use aio::hyper::hyper::body::Incoming;
use futures_util::stream::{self, Iter};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::{Status, Streaming};

/// `Say` and `Count`'s request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoRequest {
    /// What to echo.
    #[prost(string, tag = "1")]
    pub message: String,
    /// How many replies `Count` streams.
    #[prost(uint32, tag = "2")]
    pub count: u32,
}

/// `Say`'s reply, and each of `Count`'s.
#[derive(Clone, PartialEq, prost::Message)]
pub struct EchoReply {
    /// The request's message (`Say`: upper-cased).
    #[prost(string, tag = "1")]
    pub message: String,
    /// The reply's place in `Count`'s stream (0 for `Say`).
    #[prost(uint32, tag = "2")]
    pub index: u32,
}

/// `Say`'s path.
pub const SAY: &str = "/aio.Echo/Say";
/// `Count`'s path.
pub const COUNT: &str = "/aio.Echo/Count";

/// A tonic codec for prost messages: encodes `E`, decodes `D` (tonic 0.14
/// keeps its own in the `tonic-prost` crate; this is the same dozen lines).
pub struct ProstCodec<E, D>(PhantomData<fn() -> (E, D)>);

impl<E, D> Default for ProstCodec<E, D> {
    fn default() -> Self {
        ProstCodec(PhantomData)
    }
}

impl<E, D> Codec for ProstCodec<E, D>
where
    E: prost::Message + Send + 'static,
    D: prost::Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = ProstEncoder<E>;
    type Decoder = ProstDecoder<D>;

    fn encoder(&mut self) -> ProstEncoder<E> {
        ProstEncoder(PhantomData)
    }

    fn decoder(&mut self) -> ProstDecoder<D> {
        ProstDecoder(PhantomData)
    }
}

/// [`ProstCodec`]'s encoder.
pub struct ProstEncoder<E>(PhantomData<fn() -> E>);

impl<E: prost::Message> Encoder for ProstEncoder<E> {
    type Item = E;
    type Error = Status;

    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        item.encode(dst).map_err(|e| Status::internal(e.to_string()))
    }
}

/// [`ProstCodec`]'s decoder.
pub struct ProstDecoder<D>(PhantomData<fn() -> D>);

impl<D: prost::Message + Default> Decoder for ProstDecoder<D> {
    type Item = D;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, Status> {
        D::decode(src).map(Some).map_err(|e| Status::internal(e.to_string()))
    }
}

struct Say;

impl tonic::server::UnaryService<EchoRequest> for Say {
    type Response = EchoReply;
    type Future = Ready<Result<tonic::Response<EchoReply>, Status>>;

    fn call(&mut self, req: tonic::Request<EchoRequest>) -> Self::Future {
        let message = req.into_inner().message.to_uppercase();
        ready(Ok(tonic::Response::new(EchoReply { message, index: 0 })))
    }
}

struct Count;

/// `Count`'s reply stream.
type CountStream = Iter<std::vec::IntoIter<Result<EchoReply, Status>>>;

impl tonic::server::ServerStreamingService<EchoRequest> for Count {
    type Response = EchoReply;
    type ResponseStream = CountStream;
    type Future = Ready<Result<tonic::Response<CountStream>, Status>>;

    fn call(&mut self, req: tonic::Request<EchoRequest>) -> Self::Future {
        let req = req.into_inner();
        if req.count > 10_000 {
            return ready(Err(Status::invalid_argument("count above 10000")));
        }
        let replies: Vec<_> = (0..req.count)
            .map(|index| {
                Ok(EchoReply {
                    message: req.message.clone(),
                    index,
                })
            })
            .collect();
        ready(Ok(tonic::Response::new(stream::iter(replies))))
    }
}

/// The `aio.Echo` server, as tonic-build would generate it: a
/// `tower::Service` of HTTP requests that routes by path to the methods.
/// Serve it with `aio::hyper::serve(&listener,
/// TowerToHyperService::new(EchoServer))`.
#[derive(Clone, Copy, Debug, Default)]
pub struct EchoServer;

/// The future of [`EchoServer`]'s responses (`Send`, so tokio's
/// executors can serve it too, as the benches do).
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<http::Response<tonic::body::Body>, Infallible>> + Send>>;

impl tower_service::Service<http::Request<Incoming>> for EchoServer {
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Incoming>) -> ResponseFuture {
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<EchoReply, EchoRequest>::default());
            Ok(match req.uri().path() {
                SAY => grpc.unary(Say, req).await,
                COUNT => grpc.server_streaming(Count, req).await,
                _ => Status::unimplemented("no such method").into_http(),
            })
        })
    }
}

/// The `aio.Echo` client, as tonic-build would generate it, on an HTTP/2
/// [`aio::hyper::Client`].
#[derive(Debug, Clone)]
pub struct EchoClient {
    grpc: tonic::client::Grpc<Client<tonic::body::Body>>,
}

impl EchoClient {
    /// A client of the server at `addr` (`http://`, HTTP/2 without TLS).
    pub fn new(addr: SocketAddr) -> EchoClient {
        let origin = format!("http://{addr}").parse().expect("an address is a URI");
        EchoClient {
            grpc: tonic::client::Grpc::with_origin(Client::new().http2_only(), origin),
        }
    }

    /// Calls `Say`.
    ///
    /// # Errors
    /// The call's status; when the server cannot be reached, `Unknown`
    /// with the connect error (tonic's code for a transport's error).
    ///
    /// # Cancellation
    /// Dropping the future abandons the call (HTTP/2 resets the stream).
    pub async fn say(&mut self, message: &str) -> Result<EchoReply, Status> {
        self.ready().await?;
        let req = tonic::Request::new(EchoRequest {
            message: message.to_owned(),
            count: 0,
        });
        let codec = ProstCodec::<EchoRequest, EchoReply>::default();
        let res = self.grpc.unary(req, PathAndQuery::from_static(SAY), codec).await?;
        Ok(res.into_inner())
    }

    /// Calls `Count`: a stream of `count` replies carrying `message`.
    ///
    /// # Errors
    /// As [`say`](EchoClient::say); the stream reports errors met later.
    ///
    /// # Cancellation
    /// As [`say`](EchoClient::say); dropping the stream ends the call.
    pub async fn count(&mut self, message: &str, count: u32) -> Result<Streaming<EchoReply>, Status> {
        self.ready().await?;
        let req = tonic::Request::new(EchoRequest {
            message: message.to_owned(),
            count,
        });
        let codec = ProstCodec::<EchoRequest, EchoReply>::default();
        let res = self
            .grpc
            .server_streaming(req, PathAndQuery::from_static(COUNT), codec)
            .await?;
        Ok(res.into_inner())
    }

    async fn ready(&mut self) -> Result<(), Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| Status::unavailable(format!("not ready: {e}")))
    }
}
