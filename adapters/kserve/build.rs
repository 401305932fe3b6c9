//! Compiles `proto/grpc_service.proto` with the pure-Rust `protox` compiler (no protoc
//! needed) and generates the tonic client for it.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto/grpc_service.proto");
    let fds = protox::compile(["grpc_service.proto"], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        // Tensor bytes as `Bytes`: a prepared request is cloned per call without a copy.
        .bytes(".")
        .compile_fds(fds)?;
    Ok(())
}
