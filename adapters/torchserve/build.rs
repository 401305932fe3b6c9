//! Compiles `proto/inference.proto` (TorchServe's gRPC inference API, the part we use)
//! with the pure-Rust `protox` compiler (no protoc needed) and generates the tonic client.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/inference.proto");
    let fds = protox::compile(["inference.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        // Frames as `Bytes`: a prepared request is cloned per call without a copy.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
