import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { ModelInfo } from "./types.js";

type Device = ModelInfo["device"];

/**
 * Why MODEL_DEVICE cannot be used on this machine, in words a user can act on: what is missing and
 * the command or package that adds it. onnxruntime's own messages name only a library or say "No
 * supported adapters"; the worker logs them too (`detail`). The message names no local path, so
 * `status` can show it to anyone.
 */
export class DeviceUnavailableError extends Error {
  override name = "DeviceUnavailableError";
  constructor(
    readonly device: Device,
    message: string,
    /** What onnxruntime said, or which file is missing (may name local paths). */
    readonly detail: string,
  ) {
    super(message);
  }
}

const CPU_FALLBACK = "or set MODEL_DEVICE=cpu";

/** The CUDA provider's libraries that onnxruntime-node's install script adds (in bin/napi-v6/linux/x64/). */
export const CUDA_PROVIDER_FILES = ["libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so"] as const;

/** onnxruntime-node's folder of native libraries for a platform. */
export function ortBinaryDir(platform: NodeJS.Platform = process.platform, arch: string = process.arch): string {
  const pkg = createRequire(import.meta.url).resolve("onnxruntime-node/package.json");
  return join(dirname(pkg), "bin", "napi-v6", platform, arch);
}

/**
 * Throws DeviceUnavailableError when `device` is "cuda" and onnxruntime-node's CUDA provider is not
 * installed: the package ships without it, and its install script adds it on Linux x64 only.
 * Checked before any session is made, so the user gets the command instead of onnxruntime's load
 * error. `binDir` defaults to the installed package's folder for the platform.
 */
export function checkDeviceInstalled(device: Device, binDir?: string, platform: NodeJS.Platform = process.platform, arch: string = process.arch): void {
  if (device !== "cuda") return;
  if (platform !== "linux" || arch !== "x64") {
    throw new DeviceUnavailableError(
      "cuda",
      `MODEL_DEVICE=cuda: onnxruntime-node has no CUDA provider for ${platform}/${arch} (its install script adds one on Linux x64 only); use MODEL_DEVICE=webgpu, ${CPU_FALLBACK}`,
      `platform ${platform}/${arch}`,
    );
  }
  const dir = binDir ?? ortBinaryDir(platform, arch);
  const missing = CUDA_PROVIDER_FILES.filter((f) => !existsSync(join(dir, f)));
  if (!missing.length) return;
  throw new DeviceUnavailableError(
    "cuda",
    "MODEL_DEVICE=cuda: onnxruntime's CUDA provider is not installed (onnxruntime-node ships without it). " +
      "Add it with `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install` " +
      `(needs an NVIDIA driver, CUDA 12 and cuDNN 9), use MODEL_DEVICE=webgpu, ${CPU_FALLBACK}`,
    `missing in ${dir}: ${missing.join(", ")}`,
  );
}

/**
 * onnxruntime's error on opening a session for `device`, as a DeviceUnavailableError when it says
 * the device itself cannot be used; null for any other error (a broken model file, say).
 */
export function deviceError(device: Device, err: unknown): DeviceUnavailableError | null {
  const said = err instanceof Error ? err.message : String(err);
  if (device === "webgpu" && /Failed to get a WebGPU adapter|No supported adapters/i.test(said)) {
    return new DeviceUnavailableError(
      "webgpu",
      "MODEL_DEVICE=webgpu: no WebGPU adapter was found. On Linux onnxruntime's WebGPU provider runs on Vulkan: " +
        "it needs the Vulkan loader (Debian and Ubuntu: libvulkan1) and the GPU's Vulkan driver " +
        `(NVIDIA's comes with its driver, as nvidia_icd.json, and needs libglvnd0); ${CPU_FALLBACK}`,
      said,
    );
  }
  if (device === "cuda" && /Cuda: Failed to load shared library|providers_(shared|cuda)|libcudnn|libcublas|libcudart|CUDA driver version/i.test(said)) {
    return new DeviceUnavailableError(
      "cuda",
      "MODEL_DEVICE=cuda: onnxruntime's CUDA provider did not load. It needs an NVIDIA driver, CUDA 12 and cuDNN 9 " +
        "on the library path, and the provider added with `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install`; " +
        `use MODEL_DEVICE=webgpu, ${CPU_FALLBACK}`,
      said,
    );
  }
  return null;
}
