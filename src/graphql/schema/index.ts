import { builder } from "../builder.js";
import "./scalars.js";
import "./errors.js";
import "./enums.js";
import "./quality.js";
import "./creator.js";
import "./image.js";
import "./description.js";
import "./artwork.js";
import "./review.js";
import "./stats.js";
import "./sync.js";
import "./search.js";
import "./status.js";
import "./generation.js";
import "./job.js";
import "./job-mutations.js";
import "./experiment.js";
import "./node.js";

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});

export const schema = builder.toSchema({ sortSchema: false });
