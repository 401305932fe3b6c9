//! Compiles our own TF Serving `.proto` files with the pure-Rust `protox` compiler (no
//! protoc needed) and generates the tonic clients.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/tensorflow.proto");
    println!("cargo:rerun-if-changed=proto/tensorflow_serving.proto");
    let fds = protox::compile(["tensorflow.proto", "tensorflow_serving.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        // Tensor bytes as `Bytes`: a prepared request is cloned per call without a copy.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
