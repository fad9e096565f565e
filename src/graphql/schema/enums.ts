import { ArtworkState, AttributionKind, DescriptionSource, JobStatus, SyncRunStatus } from "../../generated/prisma/enums.js";
import { REVIEW_STATES } from "../../review/verdict.js";
import { builder } from "../builder.js";

export const AttributionKindEnum = builder.enumType(AttributionKind, {
  name: "AttributionKind",
  description:
    "How a work is linked to a creator on Wikidata: CREATOR is P170 itself; the others are qualifiers on an " +
    "unknown-value P170 (P1773 attributed to, P1774 workshop of, P1775 follower of, P1776 circle of, " +
    "P1777 manner of, P1779 possible creator, P1780 school of).",
});

export const ArtworkStateEnum = builder.enumType(ArtworkState, {
  name: "ArtworkState",
  description: "ACTIVE works are in the creator's inventory; the others left it and are kept with their descriptions.",
});

export const DescriptionSourceEnum = builder.enumType(DescriptionSource, {
  name: "DescriptionSource",
  description: "MODEL: written by the vision-language model; HUMAN: written by a person.",
});

export const JobStatusEnum = builder.enumType(JobStatus, { name: "JobStatus" });
export const SyncRunStatusEnum = builder.enumType(SyncRunStatus, { name: "SyncRunStatus" });

export const ReviewStateEnum = builder.enumType("ReviewState", {
  description: "A description's latest verdict, or UNREVIEWED.",
  values: REVIEW_STATES,
});
