//! ONNX model files (U²-Net-p's weights come from one): the protobuf reader and the shape check
//! of the network that takes them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("f.onnx");
    if let Ok(g) = mintframe_diffusion::onnx::parse(data, path) {
        for t in g.initializers.values() {
            assert_eq!(t.data.len(), t.dims.iter().product::<usize>());
        }
        // Anything that parses is either U²-Net-p or refused with a reason; never a panic.
        let _ = mintframe_diffusion::matte::U2NetP::from_graph(&g, path, &mintframe_diffusion::Device::Cpu);
    }
});
