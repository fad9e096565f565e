import { closeSync, openSync, renameSync, writeSync } from "node:fs";
import onnxProto from "onnx-proto";
import { toFloat16Bits } from "../float16.js";

/**
 * A small ONNX graph builder and a streaming model writer. Large weights are never held as one
 * protobuf message: each initializer's raw bytes are generated in chunks while the file is
 * written, so a 2 GB model costs a few MB of memory beyond the graph itself.
 */

const { onnx } = onnxProto;
export type TensorType = "float32" | "float16" | "int64" | "bool";
const ELEM: Record<TensorType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};
export const ELEM_BYTES: Record<TensorType, number> = { float32: 4, float16: 2, int64: 8, bool: 1 };

/** A dimension: a fixed size or a symbolic (dynamic) name. */
export type Dim = number | string;
type AttrValue = number | number[] | string | { float: number } | { floats: number[] } | { tensor: onnxProto.onnx.ITensorProto };

/** How a weight's values are made: seeded normal noise around `mean`, or one constant. */
export type WeightInit = { normal: number; mean?: number } | { constant: number };

export interface WeightSpec {
  name: string;
  dims: number[];
  init: WeightInit;
}

interface Initializer extends WeightSpec {
  type: "float32" | "float16";
}

/** FNV-1a, so every weight gets its own stream from (seed, name): tied weights in two files match. */
function hashSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** mulberry32 uniform stream with Box-Muller normals. */
export function normalStream(seed: number, name: string): () => number {
  let state = hashSeed(seed, name);
  const uniform = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    const u = 1 - uniform();
    const v = uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Builds one graph. `float` is the element type of the file's float inputs, outputs and weights. */
export class GraphBuilder {
  readonly nodes: onnxProto.onnx.INodeProto[] = [];
  readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  readonly initializers: Initializer[] = [];
  private readonly constants: onnxProto.onnx.ITensorProto[] = [];
  private counter = 0;

  constructor(
    readonly name: string,
    readonly float: "float32" | "float16",
  ) {}

  private fresh(hint: string): string {
    return `/${hint}_${this.counter++}`;
  }

  input(name: string, type: TensorType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, type: TensorType, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, type, dims));
  }

  /** Adds one node; returns its output names (one per `outputs`). */
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1, outNames?: string[]): string[] {
    const out = outNames ?? Array.from({ length: outputs }, () => this.fresh(opType));
    this.nodes.push({
      opType,
      name: this.fresh(`${opType}_node`),
      input: inputs,
      output: out,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.node(opType, inputs, attrs)[0]!;
  }

  /** A node whose single output gets a fixed name (a graph output). */
  named(name: string, opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}): string {
    return this.node(opType, inputs, attrs, 1, [name])[0]!;
  }

  /**
   * A weight stored in the file's float type. Computation stays in float32 (as ONNX Runtime's CPU
   * kernels for fp16 are incomplete), so fp16 weights are cast once per run; ORT folds that cast.
   */
  weight(name: string, dims: number[], init: WeightInit): string {
    this.initializers.push({ name, dims, init, type: this.float });
    return this.float === "float16" ? this.op("Cast", [name], { to: ELEM.float32 }) : name;
  }

  /** A weight kept in the file's float type (for ops that run on it directly, like Gather). */
  rawWeight(name: string, dims: number[], init: WeightInit): string {
    this.initializers.push({ name, dims, init, type: this.float });
    return name;
  }

  ints(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh("const_i64");
    const data = new BigInt64Array(values.map((v) => BigInt(v)));
    this.constants.push({ name, dims, dataType: ELEM.int64, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  floats(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh("const_f32");
    const data = new Float32Array(values);
    this.constants.push({ name, dims, dataType: ELEM.float32, rawData: new Uint8Array(data.buffer) });
    return name;
  }

  scalar(value: number): string {
    return this.floats([value], []);
  }

  /** Casts a float input of the file's type to float32 for computation. */
  toCompute(name: string): string {
    return this.float === "float16" ? this.op("Cast", [name], { to: ELEM.float32 }) : name;
  }

  /** Casts a float32 result to the file's type under the output's name. */
  emit(name: string, value: string, dims: Dim[]): void {
    if (this.float === "float16") this.named(name, "Cast", [value], { to: ELEM.float16 });
    else this.named(name, "Identity", [value]);
    this.output(name, this.float, dims);
  }

  /** Encodes the graph without the streamed weights (they follow as separate fields). */
  encodeSkeleton(): Uint8Array {
    return onnx.GraphProto.encode({
      name: this.name,
      node: this.nodes,
      input: this.inputs,
      output: this.outputs,
      initializer: this.constants,
    }).finish();
  }
}

export const elemType = (t: TensorType) => ELEM[t];

function valueInfo(name: string, type: TensorType, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM[type],
        shape: { dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === "number") return { name, type: T.INT, i: v };
  if (typeof v === "string") return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ("float" in v) return { name, type: T.FLOAT, f: v.float };
  if ("floats" in v) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.TENSOR, t: v.tensor };
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

const fieldHeader = (field: number, length: number) => Uint8Array.from([(field << 3) | 2, ...varint(length)]);

const CHUNK = 1 << 20;

/**
 * Writes the model to `path` (via a temporary file, renamed at the end). The protobuf is laid out
 * by hand around the streamed weights: ModelProto fields, then field 7 (graph) whose body is the
 * skeleton followed by one field-5 (initializer) entry per weight, each ending in raw_data (field 9).
 */
export function writeOnnxModel(path: string, graph: GraphBuilder, options: { seed: number; opset: number; producer: string }): number {
  const head = onnx.ModelProto.encode({
    irVersion: 8,
    producerName: options.producer,
    opsetImport: [{ domain: "", version: options.opset }],
  }).finish();
  const skeleton = graph.encodeSkeleton();
  const weights = graph.initializers.map((w) => {
    const count = w.dims.reduce((a, b) => a * b, 1);
    const dataBytes = count * ELEM_BYTES[w.type];
    const tensorHead = onnx.TensorProto.encode({ name: w.name, dims: w.dims, dataType: ELEM[w.type] }).finish();
    const rawHeader = fieldHeader(9, dataBytes);
    const tensorLength = tensorHead.length + rawHeader.length + dataBytes;
    return { w, count, tensorHead, rawHeader, entryHeader: fieldHeader(5, tensorLength), tensorLength };
  });
  const graphLength = skeleton.length + weights.reduce((a, x) => a + x.entryHeader.length + x.tensorLength, 0);
  if (graphLength >= 2 ** 31) throw new Error(`${path}: the graph is ${graphLength} bytes; protobuf files stop at 2 GiB`);

  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w");
  let written = 0;
  const put = (bytes: Uint8Array) => {
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off);
    written += bytes.length;
  };
  try {
    put(head);
    put(fieldHeader(7, graphLength));
    put(skeleton);
    for (const x of weights) {
      put(x.entryHeader);
      put(x.tensorHead);
      put(x.rawHeader);
      writeWeightData(x.w, x.count, options.seed, put);
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return written;
}

function writeWeightData(w: Initializer, count: number, seed: number, put: (b: Uint8Array) => void): void {
  const next = "normal" in w.init ? normalStream(seed, w.name) : undefined;
  const std = "normal" in w.init ? w.init.normal : 0;
  const mean = "normal" in w.init ? (w.init.mean ?? 0) : w.init.constant;
  const value = () => (next ? mean + std * next() : mean);
  for (let start = 0; start < count; start += CHUNK) {
    const n = Math.min(CHUNK, count - start);
    if (w.type === "float32") {
      const buf = new Float32Array(n);
      for (let i = 0; i < n; i++) buf[i] = value();
      put(new Uint8Array(buf.buffer));
    } else {
      const buf = new Uint16Array(n);
      for (let i = 0; i < n; i++) buf[i] = toFloat16Bits(value());
      put(new Uint8Array(buf.buffer));
    }
  }
}
