//! placeholder
#[proc_macro_attribute]
pub fn main(_a: proc_macro::TokenStream, i: proc_macro::TokenStream) -> proc_macro::TokenStream {
    i
}
#[proc_macro_attribute]
pub fn test(_a: proc_macro::TokenStream, i: proc_macro::TokenStream) -> proc_macro::TokenStream {
    i
}
