import type { Dtype, ModelModule } from "../../config.js";

/** transformers.js's file suffix per dtype (utils/dtypes.js DEFAULT_DTYPE_SUFFIX_MAPPING). */
export const DTYPE_SUFFIX: Record<Dtype, string> = {
  fp32: "",
  fp16: "_fp16",
  int8: "_int8",
  uint8: "_uint8",
  q4: "_q4",
  q4f16: "_q4f16",
  bnb4: "_bnb4",
  quantized: "_quantized",
};

/** Written next to the model files by `pull` and `synth`: where the files came from. */
export const REVISION_FILE = ".artdesc-revision.json";

export interface RevisionRecord {
  model: string;
  /** The revision asked for (a branch, tag or commit), or the synthetic model's name. */
  revision: string;
  /** The commit the hub resolved it to (its x-repo-commit header), when it said. */
  commit: string | null;
  source: "hub" | "synth";
  dtypes: string[];
  files: string[];
  createdAt: string;
}

export const onnxFile = (module: ModelModule, dtype: Dtype) => `onnx/${module}${DTYPE_SUFFIX[dtype]}.onnx`;
