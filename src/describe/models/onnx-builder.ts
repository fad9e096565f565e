import { closeSync, openSync, renameSync, writeSync } from "node:fs";
import onnxProto from "onnx-proto";
import { toFloat16Bits } from "../float16.js";
import { quantizeBlockwise4, quantizeInt8, transposeBytes, type Int8Type } from "./quantize.js";

/**
 * A small ONNX graph builder and a streaming model writer. Large weights are never held as one
 * protobuf message: each initializer's raw bytes are generated in chunks while the file is
 * written, so a 2 GB model costs a few MB of memory beyond the graph itself.
 */

const { onnx } = onnxProto;
export type TensorType = "float32" | "float16" | "int64" | "bool" | "int8" | "uint8";
const ELEM: Record<TensorType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
  int8: onnx.TensorProto.DataType.INT8,
  uint8: onnx.TensorProto.DataType.UINT8,
};
export const ELEM_BYTES: Record<TensorType, number> = { float32: 4, float16: 2, int64: 8, bool: 1, int8: 1, uint8: 1 };

/** onnxruntime's contrib operator domain (MatMulNBits). */
export const MS_DOMAIN = "com.microsoft";

/**
 * How a graph stores its MatMul (and Conv, embedding) weights:
 * - none: float weights in the file's float type;
 * - int8: onnxruntime's `quantize_dynamic`: 8-bit weights of `weights` type, activations quantised
 *   at run time (DynamicQuantizeLinear, MatMulInteger / ConvInteger, then the scales multiplied in);
 *   embeddings gathered from the 8-bit table and dequantised;
 * - q4: `MatMul4BitsQuantizer`: MatMulNBits with 4-bit blockwise weights; Conv and embeddings stay float.
 */
export type Quantization =
  | { kind: "none" }
  | { kind: "int8"; weights: Int8Type }
  | { kind: "q4"; blockSize: number; accuracyLevel: number };

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

/** A weight: generated from its seeded stream, or bytes computed from another weight's values. */
interface Initializer {
  name: string;
  dims: number[];
  type: TensorType;
  source: { init: WeightInit } | { bytes: (seed: number) => Uint8Array };
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

/** mulberry32: a seeded uniform stream in [0, 1). */
export function uniformStream(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** mulberry32 uniform stream with Box-Muller normals. */
export function normalStream(seed: number, name: string): () => number {
  const uniform = uniformStream(hashSeed(seed, name));
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
  /** Operator domains beyond the default one that the nodes use (the model imports them). */
  readonly domains = new Set<string>();
  private counter = 0;

  constructor(
    readonly name: string,
    readonly float: "float32" | "float16",
    readonly quant: Quantization = { kind: "none" },
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
  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputs = 1, outNames?: string[], domain = ""): string[] {
    const out = outNames ?? Array.from({ length: outputs }, () => this.fresh(opType));
    if (domain) this.domains.add(domain);
    this.nodes.push({
      ...(domain ? { domain } : {}),
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
    this.initializers.push({ name, dims, type: this.float, source: { init } });
    return this.float === "float16" ? this.op("Cast", [name], { to: ELEM.float32 }) : name;
  }

  /** A weight kept in the file's float type (for ops that run on it directly, like Gather). */
  rawWeight(name: string, dims: number[], init: WeightInit): string {
    this.initializers.push({ name, dims, type: this.float, source: { init } });
    return name;
  }

  /** An initializer whose bytes are computed when the file is written. */
  private derived(name: string, type: TensorType, dims: number[], bytes: (seed: number) => Uint8Array): string {
    this.initializers.push({ name, dims, type, source: { bytes } });
    return name;
  }

  /**
   * x [.., K] times the weight `name` as B [K, N], stored per the graph's quantization. `layout`
   * "nk" means the weight's values are generated as [N, K] (a tied embedding table used as the
   * head); the float graph then transposes it, the quantised ones store it as each op wants it.
   */
  matmul(x: string, name: string, k: number, n: number, init: WeightInit, layout: "kn" | "nk" = "kn"): string {
    const q = this.quant;
    if (q.kind === "none") {
      if (layout === "kn") return this.op("MatMul", [x, this.weight(name, [k, n], init)]);
      return this.op("MatMul", [x, this.op("Transpose", [this.weight(name, [n, k], init)], { perm: [1, 0] })]);
    }
    if (q.kind === "int8") {
      const w = this.quantized8(name, layout === "kn" ? [k, n] : [n, k], init, q.weights, layout === "nk");
      return this.dynamicQuantized("MatMulInteger", x, w, {});
    }
    const values = shared(2, (seed) => {
      const v = quantizeBlockwise4(generateWeight(seed, name, k * n, init), k, n, layout, q.blockSize);
      return { packed: v.packed, scales: v.scales };
    });
    const blocks = Math.ceil(k / q.blockSize);
    const b = this.derived(`${name}_Q4`, "uint8", [n, blocks, q.blockSize / 2], (seed) => values(seed).packed);
    const scales = this.derived(`${name}_scales`, this.float, [n * blocks], (seed) => floatBytes(values(seed).scales, this.float));
    const attrs = { K: k, N: n, bits: 4, block_size: q.blockSize, accuracy_level: q.accuracyLevel };
    if (this.float === "float32") return this.node("MatMulNBits", [x, b, scales], attrs, 1, undefined, MS_DOMAIN)[0]!;
    // q4f16: MatMulNBits runs on fp16 activations with fp16 scales, as in Hugging Face's q4f16
    // files; the rest of this graph computes in float32 (see weight()), so cast around it.
    const half = this.op("Cast", [x], { to: ELEM.float16 });
    const y = this.node("MatMulNBits", [half, b, scales], attrs, 1, undefined, MS_DOMAIN)[0]!;
    return this.op("Cast", [y], { to: ELEM.float32 });
  }

  /** Conv (no padding) with bias; ConvInteger on dynamically quantised input in int8 graphs. */
  conv(x: string, name: string, dims: number[], init: WeightInit, bias: () => string, attrs: Record<string, AttrValue>): string {
    const q = this.quant;
    if (q.kind !== "int8") {
      const w = this.weight(name, dims, init);
      return this.op("Conv", [x, w, bias()], attrs);
    }
    const w = this.quantized8(name, dims, init, q.weights, false);
    const y = this.dynamicQuantized("ConvInteger", x, w, attrs);
    return this.op("Add", [y, this.op("Reshape", [bias(), this.ints([dims[0]!, 1, 1])])]);
  }

  /** Gather rows of an embedding table into the output `out` (in the file's float type). */
  embedding(out: string, ids: string, name: string, dims: [number, number], init: WeightInit): void {
    const q = this.quant;
    if (q.kind !== "int8") {
      this.named(out, "Gather", [this.rawWeight(name, dims, init), ids], { axis: 0 });
      return;
    }
    const w = this.quantized8(name, dims, init, q.weights, false);
    this.named(out, "DequantizeLinear", [this.op("Gather", [w.data, ids], { axis: 0 }), w.scale, w.zeroPoint]);
  }

  /** A weight quantised to 8 bits per tensor, with its scale and zero point (quantize_dynamic's names). */
  private quantized8(name: string, dims: number[], init: WeightInit, type: Int8Type, transpose: boolean) {
    const count = dims.reduce((a, b) => a * b, 1);
    const values = shared(3, (seed) => quantizeInt8(generateWeight(seed, name, count, init), type));
    const stored = transpose ? [dims[1]!, dims[0]!] : dims;
    return {
      data: this.derived(`${name}_quantized`, type, stored, (seed) => {
        const v = values(seed).data;
        return transpose ? transposeBytes(v, dims[0]!, dims[1]!) : v;
      }),
      scale: this.derived(`${name}_scale`, "float32", [], (seed) => floatBytes(Float32Array.of(values(seed).scale), "float32")),
      zeroPoint: this.derived(`${name}_zero_point`, type, [], (seed) => Uint8Array.of(values(seed).zeroPoint & 0xff)),
    };
  }

  /**
   * onnxruntime's MatMulInteger / ConvInteger rewrite of a float op: DynamicQuantizeLinear on the
   * activation, the integer op, Cast to float, times (activation scale x weight scale). The shape
   * is the one its graph optimiser fuses into DynamicQuantizeMatMul for MatMul.
   */
  private dynamicQuantized(opType: string, x: string, w: { data: string; scale: string; zeroPoint: string }, attrs: Record<string, AttrValue>): string {
    const [xq, xScale, xZero] = this.node("DynamicQuantizeLinear", [x], {}, 3) as [string, string, string];
    const integer = this.op(opType, [xq, w.data, xZero, w.zeroPoint], attrs);
    const scales = this.op("Mul", [xScale, w.scale]);
    return this.op("Mul", [this.op("Cast", [integer], { to: ELEM.float32 }), scales]);
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

  /**
   * Makes a float32 result a graph output under `name`, in the file's type; returns the name later
   * nodes should read the result by. In a float32 file the node that computes the result writes
   * the output itself (as Hugging Face's exports do): an `Identity` in between would copy it on
   * every run, which for the key/value cache is a copy of the whole cache per layer and step.
   * In a float16 file a Cast writes the output, and later nodes keep reading the float32 result.
   */
  emit(name: string, value: string, dims: Dim[]): string {
    this.output(name, this.float, dims);
    if (this.float === "float16") {
      this.named(name, "Cast", [value], { to: ELEM.float16 });
      return value;
    }
    const producer = this.nodes.find((n) => n.output?.includes(value));
    const isGraphName = this.inputs.some((i) => i.name === value) || this.outputs.some((o) => o.name === value);
    if (!producer || isGraphName) {
      this.named(name, "Identity", [value]);
      return name;
    }
    producer.output = producer.output!.map((o) => (o === value ? name : o));
    for (const n of this.nodes) n.input = n.input?.map((i) => (i === value ? name : i)) ?? [];
    return name;
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

/**
 * A value computed once per file write and shared by `uses` initializers (a quantised weight and
 * its scales), dropped after the last one so a large model holds one weight at a time.
 */
function shared<T>(uses: number, compute: (seed: number) => T): (seed: number) => T {
  let value: T | undefined;
  let left = uses;
  return (seed) => {
    value ??= compute(seed);
    const v = value;
    if (--left === 0) {
      value = undefined;
      left = uses;
    }
    return v;
  };
}

function floatBytes(values: Float32Array, type: "float32" | "float16"): Uint8Array {
  if (type === "float32") return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toFloat16Bits(values[i]!);
  return new Uint8Array(out.buffer);
}

/** A weight's values as float32, exactly the stream writeWeightData stores for a float file. */
export function generateWeight(seed: number, name: string, count: number, init: WeightInit): Float32Array {
  const next = "normal" in init ? normalStream(seed, name) : undefined;
  const std = "normal" in init ? init.normal : 0;
  const mean = "normal" in init ? (init.mean ?? 0) : init.constant;
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = next ? mean + std * next() : mean;
  return out;
}

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
  const head = modelHead(graph, options);
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
      if ("init" in x.w.source) writeWeightData(x.w, x.w.source.init, x.count, options.seed, put);
      else {
        const bytes = x.w.source.bytes(options.seed);
        if (bytes.length !== x.count * ELEM_BYTES[x.w.type]) throw new Error(`${x.w.name}: computed ${bytes.length} bytes, declared ${x.count * ELEM_BYTES[x.w.type]}`);
        put(bytes);
      }
    }
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  return written;
}

/**
 * Encodes a graph without weights (only node constants) as one in-memory model, for
 * `InferenceSession.create(bytes)`: small helper graphs built at run time. Same layout as
 * writeOnnxModel; a graph with weights must be streamed to a file by writeOnnxModel instead.
 */
export function encodeOnnxModel(graph: GraphBuilder, options: { opset: number; producer: string }): Uint8Array {
  if (graph.initializers.length) throw new Error(`${graph.name}: ${graph.initializers.length} weights; write it with writeOnnxModel`);
  const head = modelHead(graph, options);
  const skeleton = graph.encodeSkeleton();
  const header = fieldHeader(7, skeleton.length);
  const out = new Uint8Array(head.length + header.length + skeleton.length);
  out.set(head, 0);
  out.set(header, head.length);
  out.set(skeleton, head.length + header.length);
  return out;
}

/** The ModelProto fields before the graph (field 7): IR version, producer, opsets. */
function modelHead(graph: GraphBuilder, options: { opset: number; producer: string }): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    producerName: options.producer,
    // MatMulNBits is version 1 of onnxruntime's contrib domain.
    opsetImport: [{ domain: "", version: options.opset }, ...[...graph.domains].map((domain) => ({ domain, version: 1 }))],
  }).finish();
}

function writeWeightData(w: Initializer, init: WeightInit, count: number, seed: number, put: (b: Uint8Array) => void): void {
  const next = "normal" in init ? normalStream(seed, w.name) : undefined;
  const std = "normal" in init ? init.normal : 0;
  const mean = "normal" in init ? (init.mean ?? 0) : init.constant;
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
