import { GraphBuilder, writeOnnxModel } from "../../src/describe/models/onnx-builder.js";

/** An ONNX model of 16 chained 512x512 float32 MatMuls: its run takes as long as its input has rows. */
export function writeSlowMatmulModel(path: string): void {
  const g = new GraphBuilder("slow", "float32");
  let x = g.input("x", "float32", ["rows", 512]);
  for (let i = 0; i < 16; i++) x = g.matmul(x, `w${i}`, 512, 512, { normal: 0.04 });
  g.emit("y", x, ["rows", 512]);
  writeOnnxModel(path, g, { seed: 1, opset: 17, producer: "artdesc-test" });
}
