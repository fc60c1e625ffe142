"""The embedding model behind one interface: ONNX Runtime and PyTorch backends, and the ONNX export."""
