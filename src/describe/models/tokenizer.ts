import { MAX_TILE_GRID, type Preset } from "./presets.js";

/**
 * A byte-level BPE tokenizer without merges (every UTF-8 byte is one token) that carries SmolVLM's
 * special tokens at the preset's ids, and SmolVLM-Instruct's chat template. transformers.js's own
 * tokenizer and Idefics3 processor run on it unchanged; unassigned ids get `<|reserved_N|>`.
 */

/** GPT-2's bytes_to_unicode: printable stand-ins for the 256 byte values. */
export function byteToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 33; b <= 126; b++) keep.push(b);
  for (let b = 161; b <= 172; b++) keep.push(b);
  for (let b = 174; b <= 255; b++) keep.push(b);
  const out: string[] = new Array(256);
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    out[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + extra++);
  }
  return out;
}

/** SmolVLM-Instruct's chat template (the role is capitalised; text after an image gets no space). */
export const CHAT_TEMPLATE =
  "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}" +
  "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}" +
  "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}" +
  "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n" +
  "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}";

/** The special tokens by id. Byte tokens fill ids 3..258. */
export function specialTokens(p: Preset): Map<number, string> {
  const t = p.tokens;
  const m = new Map<number, string>([
    [t.endOfText, "<|endoftext|>"],
    [t.imStart, "<|im_start|>"],
    [t.imEnd, "<|im_end|>"],
    [t.fakeTokenAroundImage, "<fake_token_around_image>"],
    [t.image, "<image>"],
    [t.globalImage, "<global-img>"],
    [t.endOfUtterance, "<end_of_utterance>"],
  ]);
  for (let r = 0; r < MAX_TILE_GRID; r++) {
    for (let c = 0; c < MAX_TILE_GRID; c++) m.set(t.rowColStart + r * MAX_TILE_GRID + c, `<row_${r + 1}_col_${c + 1}>`);
  }
  return m;
}

export const FIRST_BYTE_ID = 3;

export function tokenizerFiles(p: Preset) {
  const specials = specialTokens(p);
  const bytes = byteToUnicode();
  const vocab: Record<string, number> = {};
  for (let id = 0; id < p.text.vocabSize; id++) {
    const special = specials.get(id);
    const b = id - FIRST_BYTE_ID;
    if (special !== undefined) vocab[special] = id;
    else if (b >= 0 && b < 256) {
      if (specials.size + 256 > p.text.vocabSize) throw new Error("vocabulary too small for bytes and special tokens");
      vocab[bytes[b]!] = id;
    } else vocab[`<|reserved_${id}|>`] = id;
  }
  for (const id of specials.keys()) {
    if (id >= FIRST_BYTE_ID && id < FIRST_BYTE_ID + 256) throw new Error(`special token id ${id} collides with the byte tokens`);
    if (id >= p.text.vocabSize) throw new Error(`special token id ${id} is outside the vocabulary (${p.text.vocabSize})`);
  }
  const added = [...specials.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([id, content]) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }));

  const tokenizer = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: [],
    },
  };
  const name = (id: number) => specials.get(id)!;
  const tokenizerConfig = {
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(added.map(({ id, ...rest }) => [String(id), rest])),
    additional_special_tokens: ["<fake_token_around_image>", "<image>", "<end_of_utterance>"],
    bos_token: name(p.tokens.imStart),
    eos_token: name(p.tokens.endOfUtterance),
    pad_token: name(p.tokens.imEnd),
    unk_token: name(p.tokens.endOfText),
    chat_template: CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    model_max_length: p.text.maxPositionEmbeddings,
    processor_class: "Idefics3Processor",
    tokenizer_class: "GPT2Tokenizer",
    legacy: false,
  };
  return { tokenizer, tokenizerConfig };
}
