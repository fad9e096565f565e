import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { createRequire } from "node:module";
import type onnxProto from "onnx-proto";

/**
 * Reads an ONNX file's graph inputs and outputs without loading its weights: the protobuf is
 * walked field by field with positioned reads, and initializers are skipped by their length
 * (only their names and external-data locations are read). A 1.5 GB decoder costs a few reads.
 */

/**
 * onnx-proto's generated decoders (375 KB of code), loaded at the first read: the commands that
 * reach this module without reading a model file (`artdesc status`) do not load them.
 */
let decoders: typeof onnxProto.onnx | undefined;
const onnx = () => (decoders ??= (createRequire(import.meta.url)("onnx-proto") as typeof onnxProto).onnx);

export interface TensorSignature {
  name: string;
  /** onnxruntime's spelling: float32, float16, int64, bool, ... */
  type: string;
  /** A number for a fixed size, a string for a named dynamic dimension, null for an unnamed one. */
  dims: (number | string | null)[];
}

export interface OnnxSignature {
  irVersion: number;
  opset: number | null;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
  /** Files named by initializers stored outside the model (external data), relative to it. */
  externalData: string[];
}

const TYPE_NAMES: Record<number, string> = {
  1: "float32",
  2: "uint8",
  3: "int8",
  4: "uint16",
  5: "int16",
  6: "int32",
  7: "int64",
  8: "string",
  9: "bool",
  10: "float16",
  11: "float64",
  12: "uint32",
  13: "uint64",
  16: "bfloat16",
};

class Reader {
  private readonly fd: number;
  readonly size: number;
  constructor(readonly path: string) {
    this.fd = openSync(path, "r");
    this.size = fstatSync(this.fd).size;
  }
  bytes(pos: number, length: number): Buffer {
    const buf = Buffer.alloc(length);
    let off = 0;
    while (off < length) {
      const n = readSync(this.fd, buf, off, length - off, pos + off);
      if (n === 0) throw new Error(`${this.path}: truncated protobuf (wanted ${length} bytes at ${pos})`);
      off += n;
    }
    return buf;
  }
  varint(pos: number): { value: number; next: number } {
    const buf = this.bytes(pos, Math.min(10, this.size - pos));
    let value = 0;
    let scale = 1;
    for (let i = 0; i < buf.length; i++) {
      const b = buf[i]!;
      value += (b & 0x7f) * scale;
      scale *= 128;
      if (!(b & 0x80)) return { value, next: pos + i + 1 };
    }
    throw new Error(`${this.path}: bad varint at ${pos}`);
  }
  close() {
    closeSync(this.fd);
  }
}

interface Field {
  field: number;
  wire: number;
  /** Start of the value (for length-delimited: of the payload). */
  start: number;
  length: number;
  varint: number;
}

function* fields(r: Reader, start: number, end: number): Generator<Field> {
  let pos = start;
  while (pos < end) {
    const tag = r.varint(pos);
    const field = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    pos = tag.next;
    if (wire === 0) {
      const v = r.varint(pos);
      yield { field, wire, start: pos, length: v.next - pos, varint: v.value };
      pos = v.next;
    } else if (wire === 2) {
      const len = r.varint(pos);
      yield { field, wire, start: len.next, length: len.value, varint: 0 };
      pos = len.next + len.value;
    } else if (wire === 1 || wire === 5) {
      const length = wire === 1 ? 8 : 4;
      yield { field, wire, start: pos, length, varint: 0 };
      pos += length;
    } else {
      throw new Error(`${r.path}: unsupported protobuf wire type ${wire} at ${pos}; not an ONNX model?`);
    }
  }
  if (pos !== end) throw new Error(`${r.path}: protobuf field overruns its message`);
}

const toNumber = (v: number | { toNumber(): number }) => (typeof v === "number" ? v : v.toNumber());

function signature(bytes: Buffer): TensorSignature {
  const v = onnx().ValueInfoProto.decode(bytes);
  const tensor = v.type?.tensorType;
  const elem = tensor?.elemType ?? 0;
  return {
    name: v.name,
    type: tensor ? (TYPE_NAMES[elem] ?? `type${elem}`) : "non-tensor",
    // Decoded messages own only the fields that were set (the oneof's defaults live on the prototype).
    dims: (tensor?.shape?.dim ?? []).map((d) =>
      Object.hasOwn(d, "dimParam") && d.dimParam ? d.dimParam : Object.hasOwn(d, "dimValue") && d.dimValue != null ? toNumber(d.dimValue) : null,
    ),
  };
}

/**
 * The distinct `accuracy_level` values of a graph's MatMulNBits nodes (0 where unset, onnxruntime's
 * default); empty when the graph has none. Only the nodes are read, not the weights.
 */
export function readMatMulNBitsLevels(path: string): number[] {
  const r = new Reader(path);
  try {
    const levels = new Set<number>();
    for (const f of fields(r, 0, r.size)) {
      if (f.field !== 7 || f.wire !== 2) continue;
      for (const n of fields(r, f.start, f.start + f.length)) {
        if (n.field !== 1 || n.wire !== 2) continue;
        const node = onnx().NodeProto.decode(r.bytes(n.start, n.length));
        if (node.opType !== "MatMulNBits") continue;
        const level = node.attribute.find((a) => a.name === "accuracy_level")?.i;
        levels.add(level == null ? 0 : toNumber(level));
      }
    }
    return [...levels].sort();
  } finally {
    r.close();
  }
}

export function readOnnxSignature(path: string): OnnxSignature {
  const r = new Reader(path);
  try {
    const out: OnnxSignature = { irVersion: 0, opset: null, inputs: [], outputs: [], externalData: [] };
    const initializerNames = new Set<string>();
    let graph: Field | undefined;
    for (const f of fields(r, 0, r.size)) {
      if (f.field === 1 && f.wire === 0) out.irVersion = f.varint;
      else if (f.field === 7 && f.wire === 2) graph = f;
      else if (f.field === 8 && f.wire === 2) {
        const set = onnx().OperatorSetIdProto.decode(r.bytes(f.start, f.length));
        if (!set.domain) out.opset = toNumber(set.version);
      }
    }
    if (!graph) throw new Error(`${path}: no graph; not an ONNX model`);
    const external = new Set<string>();
    for (const f of fields(r, graph.start, graph.start + graph.length)) {
      if (f.wire !== 2) continue;
      if (f.field === 11) out.inputs.push(signature(r.bytes(f.start, f.length)));
      else if (f.field === 12) out.outputs.push(signature(r.bytes(f.start, f.length)));
      else if (f.field === 5) {
        for (const t of fields(r, f.start, f.start + f.length)) {
          if (t.field === 8 && t.wire === 2) initializerNames.add(r.bytes(t.start, t.length).toString("utf8"));
          if (t.field === 13 && t.wire === 2) {
            const entry = onnx().StringStringEntryProto.decode(r.bytes(t.start, t.length));
            if (entry.key === "location") external.add(entry.value);
          }
        }
      }
    }
    // Old exports (IR < 4) list initializers among the inputs; onnxruntime does not.
    out.inputs = out.inputs.filter((i) => !initializerNames.has(i.name));
    out.externalData = [...external];
    return out;
  } finally {
    r.close();
  }
}
