import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BertTokenizer } from "@huggingface/transformers";
import { describe, expect, it } from "vitest";
import { bertTokenizerFiles, EMBED_PRESETS, embedVocabulary, synthEmbedModel } from "../../src/describe/models/embed-synth.js";
import { ART_WORDS, bulkText } from "../support/bulk.js";

function tokenizer(kind: "semantic" | "subword") {
  const { tokenizer: json, tokenizerConfig } = bertTokenizerFiles(embedVocabulary(kind), 512);
  return new BertTokenizer(json, tokenizerConfig);
}

describe("the synthetic embedding models' vocabularies", () => {
  it("writes embed-tiny byte for byte as before (the semantic tests' model)", () => {
    const dir = mkdtempSync(join(tmpdir(), "artdesc-embed-synth-"));
    try {
      synthEmbedModel({ preset: "embed-tiny", outDir: dir });
      const sha = (f: string) => createHash("sha256").update(readFileSync(join(dir, f))).digest("hex");
      expect({
        config: sha("config.json"),
        tokenizer: sha("tokenizer.json"),
        tokenizerConfig: sha("tokenizer_config.json"),
        special: sha("special_tokens_map.json"),
        onnx: sha("onnx/model.onnx"),
      }).toEqual({
        config: "9ff7ccf499b742f63bc1aba3320184e8a166f89f809438c9637b016da7b99f49",
        tokenizer: "1fe3356f829b055a5d984875970b05a88c1309b383db0aa0bc34c8490c78cc61",
        tokenizerConfig: "10c72650765687d0c3ce6a44c99c705977829d4bbf34d8e3b49fcd7c57ee8cb9",
        special: "b6d346be366a7d1d48332dbc9fdf3bf8960b5d879522b7799ddba59e76237ee3",
        onnx: "dcbe87b0949b8964afa9882d09a55cccece67df9f8b6a7104221f8255e6d143d",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps the semantic vocabulary's ids in the subword one (appended after it)", () => {
    const semantic = embedVocabulary("semantic").tokens;
    const subword = embedVocabulary("subword").tokens;
    expect(subword.slice(0, semantic.length)).toEqual(semantic);
    expect(subword.length).toBeGreaterThan(semantic.length + 2_000);
    expect(new Set(subword).size).toBe(subword.length);
    expect(EMBED_PRESETS["embed-e5-small"].vocabulary).toBe("subword");
    expect(EMBED_PRESETS["embed-tiny"].vocabulary).toBe("semantic");
  });

  it("cuts bench texts into about as many tokens as e5's sentencepiece: words whole, rare words into syllables and numbers", () => {
    const subword = tokenizer("subword");
    const semantic = tokenizer("semantic");
    // [CLS] query : woman dog [SEP]
    expect(subword.encode("query: woman dog")).toHaveLength(6);
    for (const w of ART_WORDS) expect(subword.tokenize(w), w).toEqual([w]);
    expect(subword.tokenize("kevadi402")).toEqual(["ke", "##va", "##di", "##402"]);
    expect(semantic.tokenize("kevadi402")).toHaveLength(9);
    const words = Array.from({ length: 40 }, (_, i) => bulkText(i + 1, 150)).join(" ").split(/\s+/);
    for (const w of words.filter((x) => /^[a-z]+\.?$/i.test(x))) expect(subword.tokenize(w).length, w).toBeLessThanOrEqual(2);
    // Made-up names (syllables and a number): a few pieces each, never spelled letter by letter.
    for (const w of words.filter((x) => /\d/.test(x))) expect(subword.tokenize(w.replace(".", "")).length, w).toBeLessThanOrEqual(5);
    const perWord = subword.tokenize(words.join(" ")).length / words.length;
    expect(perWord).toBeGreaterThan(1.3);
    expect(perWord).toBeLessThan(2.6);
  });
});
