//! The body the client's connections carry: the user's body, or nothing
//! (an empty one, which can always be sent again), and the copy a resent
//! request needs.

use std::any::Any;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Frame, SizeHint};

/// A request body as a connection sends it.
pub(crate) enum ReqBody<B> {
    /// No body (the user's was at its end before the first frame).
    Empty,
    /// The user's body.
    Some(B),
}

impl<B: Body + 'static> ReqBody<B> {
    pub(crate) fn new(body: B) -> ReqBody<B> {
        // `is_end_stream` promises no frame, trailers included.
        if body.is_end_stream() {
            ReqBody::Empty
        } else {
            ReqBody::Some(body)
        }
    }

    /// The same body again, for a resent request, when it can be copied:
    /// an empty body, `Full<Bytes>` (the copy shares the bytes) or
    /// `String`. Any other body type streams once.
    pub(crate) fn try_clone(&self) -> Option<ReqBody<B>> {
        match self {
            ReqBody::Empty => Some(ReqBody::Empty),
            ReqBody::Some(b) => clone_known(b).map(ReqBody::Some),
        }
    }
}

/// A copy of `b` if its type is one known to be a cheap, complete copy.
/// (`Client<B>` takes any body, so this asks the type at run time rather
/// than requiring `B: Clone` of every client.)
fn clone_known<B: 'static>(b: &B) -> Option<B> {
    let any: &dyn Any = b;
    let copy: Box<dyn Any> = if let Some(full) = any.downcast_ref::<Full<Bytes>>() {
        Box::new(full.clone())
    } else if let Some(s) = any.downcast_ref::<String>() {
        Box::new(s.clone())
    } else {
        return None;
    };
    copy.downcast::<B>().ok().map(|b| *b)
}

impl<B: Body + Unpin> Body for ReqBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        match self.get_mut() {
            ReqBody::Empty => Poll::Ready(None),
            ReqBody::Some(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ReqBody::Empty => true,
            ReqBody::Some(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ReqBody::Empty => SizeHint::with_exact(0),
            ReqBody::Some(b) => b.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::Empty;

    /// A body of one frame that cannot be rewound.
    struct Once(Option<Bytes>);

    impl Body for Once {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
            Poll::Ready(self.get_mut().0.take().map(|b| Ok(Frame::data(b))))
        }
    }

    #[test]
    fn copies_only_known_bodies() {
        let full = ReqBody::new(Full::new(Bytes::from_static(b"abc")));
        assert!(matches!(full.try_clone(), Some(ReqBody::Some(_))));
        let text = ReqBody::new(String::from("abc"));
        assert!(matches!(text.try_clone(), Some(ReqBody::Some(s)) if s == "abc"));
        // Empty bodies of any type go as `Empty`, which copies.
        let empty = ReqBody::new(Empty::<Bytes>::new());
        assert!(matches!(empty.try_clone(), Some(ReqBody::Empty)));
        // A stream does not.
        let once = ReqBody::new(Once(Some(Bytes::from_static(b"x"))));
        assert!(once.try_clone().is_none());
    }
}
