import type { Description } from "../../generated/prisma/client.js";
import { type ModelFileHash, type Reproduction, storedReproduction } from "../../generation/reproduction.js";
import { builder } from "../builder.js";
import { fieldWeight, LONG_TEXT_WEIGHT } from "../limits/cost.js";

/** `Description.reproduction`: what `artdesc describe --like` needs to run a model description again. */

const ModelFileRef = builder.objectRef<ModelFileHash>("ModelFile").implement({
  description: "A file the model was loaded from.",
  fields: (t) => ({
    path: t.exposeString("path", { description: 'Its path in the model folder ("onnx/decoder_model_merged.onnx").' }),
    sha256: t.exposeString("sha256"),
  }),
});

const ReproductionRef = builder.objectRef<Reproduction>("Reproduction").implement({
  description:
    "Everything besides the generation parameters that `artdesc describe --like <id>` needs to run a model description again. " +
    "Fields are null for descriptions written before they were recorded.",
  fields: (t) => ({
    instruction: t.exposeString("instruction", {
      nullable: true,
      extensions: fieldWeight(LONG_TEXT_WEIGHT),
      description:
        "The chat-templated prompt exactly as it went to the processor: the instruction with the artwork's facts when " +
        "DESCRIBE_PROMPT_CONTEXT was on, and one <image> placeholder that the processor expands into the image tokens.",
    }),
    cleanMarkdown: t.exposeBoolean("cleanMarkdown", { nullable: true }),
    decoding: t.exposeString("decoding", { nullable: true, description: '"greedy" (one beam: exactly Hugging Face greedy search) or "beam".' }),
    batchSize: t.exposeInt("batchSize", { nullable: true, description: "Images decoded together in the batch that wrote it." }),
    imageHash: t.exposeString("imageHash", {
      nullable: true,
      description: "sha256 of the image file's bytes as the model read them (the image's localHash at the time).",
    }),
    modelFiles: t.field({ type: [ModelFileRef], description: "The model's files, hashed when the model was loaded.", resolve: (r) => r.modelFiles }),
  }),
});

export function reproductionField(d: Description): Reproduction | null {
  return d.source === "MODEL" ? storedReproduction(d) : null;
}

export { ReproductionRef };
