import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { openDescriber } from "../../src/describe/describer.js";
import { checkDeviceInstalled, CUDA_PROVIDER_FILES, DeviceUnavailableError, deviceError, ortBinaryDir } from "../../src/describe/device.js";
import { Engine } from "../../src/describe/engine.js";
import { modelErrorForReaders } from "../../src/jobs/worker.js";
import { loadConfig } from "../../src/config.js";
import { createTinyModel } from "../support/models.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function binDir(files: string[]): string {
  const dir = mkdtempSync(join(tmpdir(), "artdesc-ortbin-"));
  dirs.push(dir);
  for (const f of files) writeFileSync(join(dir, f), "");
  return dir;
}

describe("checkDeviceInstalled", () => {
  it("asks nothing of the CPU or WebGPU, whose providers onnxruntime-node bundles", () => {
    const empty = binDir([]);
    expect(() => checkDeviceInstalled("cpu", empty)).not.toThrow();
    expect(() => checkDeviceInstalled("webgpu", empty)).not.toThrow();
  });

  it("names the install command, and no local path, when the CUDA provider's libraries are missing", () => {
    const half = binDir(["libonnxruntime_providers_shared.so"]);
    let caught: unknown;
    try {
      checkDeviceInstalled("cuda", half, "linux", "x64");
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(DeviceUnavailableError);
    const err = caught as DeviceUnavailableError;
    expect(err.device).toBe("cuda");
    expect(err.message).toContain("ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install");
    expect(err.message).toContain("MODEL_DEVICE=cpu");
    expect(err.message).not.toContain(half);
    expect(err.detail).toBe(`missing in ${half}: libonnxruntime_providers_cuda.so`);
    // status shows it as it is: it names no path.
    expect(modelErrorForReaders(err)).toBe(err.message);
  });

  it("passes once the install script's files are there", () => {
    expect(() => checkDeviceInstalled("cuda", binDir([...CUDA_PROVIDER_FILES]), "linux", "x64")).not.toThrow();
  });

  it("says there is no CUDA provider where onnxruntime-node's install script adds none (only Linux x64 has one)", () => {
    const full = binDir([...CUDA_PROVIDER_FILES]);
    for (const [platform, arch] of [["win32", "x64"], ["linux", "arm64"], ["darwin", "arm64"]] as const) {
      expect(() => checkDeviceInstalled("cuda", full, platform, arch)).toThrow(`onnxruntime-node has no CUDA provider for ${platform}/${arch}`);
    }
  });
});

describe("deviceError", () => {
  // onnxruntime-node 1.30's words, as it said them on a machine without a Vulkan driver and without the CUDA provider.
  const noAdapter =
    "/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(const onnxruntime::webgpu::WebGpuContextConfig&)::<lambda()> adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters";
  const noCuda = "OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library";

  it("explains a missing WebGPU adapter: the Vulkan loader and the driver's Vulkan part", () => {
    const err = deviceError("webgpu", new Error(noAdapter));
    expect(err).toBeInstanceOf(DeviceUnavailableError);
    expect(err!.message).toContain("libvulkan1");
    expect(err!.message).toContain("MODEL_DEVICE=cpu");
    expect(err!.detail).toBe(noAdapter);
  });

  it("explains a CUDA provider that did not load", () => {
    const err = deviceError("cuda", new Error(noCuda));
    expect(err!.message).toContain("cuDNN 9");
    expect(err!.detail).toBe(noCuda);
  });

  it("leaves every other error alone, and the words of one device on another", () => {
    expect(deviceError("webgpu", new Error("Protobuf parsing failed."))).toBeNull();
    expect(deviceError("cuda", new Error(noAdapter))).toBeNull();
    expect(deviceError("webgpu", new Error(noCuda))).toBeNull();
    expect(deviceError("cpu", new Error(noAdapter))).toBeNull();
  });
});

// onnxruntime-node as this project installs it: its install script is not run, so the CUDA
// provider is absent (always so in CI; a machine that added it skips these).
const cudaAbsent = process.platform !== "linux" || process.arch !== "x64" || CUDA_PROVIDER_FILES.some((f) => !existsSync(join(ortBinaryDir(), f)));

describe.runIf(cudaAbsent)("MODEL_DEVICE=cuda without the CUDA provider", () => {
  it("fails Engine.load and openDescriber with the command that adds it, before any session is made", async () => {
    const model = createTinyModel();
    try {
      await expect(Engine.load({ modelDir: model.dir, device: "cuda", dtype: "fp32" })).rejects.toThrow(DeviceUnavailableError);
      const config = loadConfig({ MODEL_DEVICE: "cuda", MODEL_DTYPE: "fp32" });
      await expect(openDescriber(config, { modelDir: model.dir })).rejects.toThrow(/MODEL_DEVICE=cuda: onnxruntime/);
    } finally {
      model.remove();
    }
  });
});
