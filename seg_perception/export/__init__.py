"""Deployment export: ``export_onnx(model, out_path, height, width, dynamic=True, opset=17)`` and
``check_parity(model, onnx_path, images) -> ParityReport`` (see ``onnx_export``)."""

from seg_perception.export.onnx_export import INPUT_NAME, OUTPUT_NAME, ParityReport, check_parity, export_onnx

__all__ = ["INPUT_NAME", "OUTPUT_NAME", "ParityReport", "check_parity", "export_onnx"]
