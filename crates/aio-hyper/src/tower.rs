//! [`Client`] as a `tower::Service`, the interface tonic's generated
//! clients, tower middleware and other HTTP crates are written against.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::body::{Body, Incoming};
use hyper::{Request, Response};

use crate::{Client, ClientError};

/// The future of [`Client`]'s `tower::Service::call`: the request sent on
/// the pool, as [`Client::request`] does (not `Send`: it belongs to the
/// loop, like the pool).
pub type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response<Incoming>, ClientError>>>>;

/// `tower::Service<http::Request<B>>`: always ready (the pool queues
/// requests beyond its limits itself), and `call` is
/// [`Client::request`]. So a tonic client runs on aio-hyper as is:
/// `tonic::client::Grpc::with_origin(client, origin)` with an HTTP/2
/// client ([`Client::http2_only`] for `http://`).
///
/// # Cancellation
/// As [`Client::request`]: dropping the future abandons the request.
impl<B> tower_service::Service<Request<B>> for Client<B>
where
    B: Body + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    type Response = Response<Incoming>;
    type Error = ClientError;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), ClientError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> ResponseFuture {
        let client = self.clone();
        Box::pin(async move { client.request(req).await })
    }
}
