import { builder } from "../builder.js";

/** Served by the API under /images/ (see src/server.ts). */
export function localImageUrl(localPath: string | null): string | null {
  return localPath ? `/images/${localPath.split("/").map(encodeURIComponent).join("/")}` : null;
}

export const ImageRef = builder.prismaObject("Image", {
  description: "A Commons file of an artwork, with its licence and the normalised copy this server keeps.",
  fields: (t) => ({
    fileTitle: t.exposeString("fileTitle", { description: 'Commons title, "File:....jpg".' }),
    isMain: t.exposeBoolean("isMain"),
    url: t.string({
      nullable: true,
      description: "Path of the normalised local JPEG on this server (null until downloaded).",
      select: { localPath: true },
      resolve: (i) => localImageUrl(i.localPath),
    }),
    originalUrl: t.exposeString("originalUrl", { nullable: true }),
    thumbUrl: t.exposeString("thumbUrl", { nullable: true }),
    width: t.exposeInt("width", { nullable: true }),
    height: t.exposeInt("height", { nullable: true }),
    mime: t.exposeString("mime", { nullable: true }),
    sha1: t.exposeString("sha1", { nullable: true }),
    licenseShortName: t.exposeString("licenseShortName", { nullable: true }),
    usageTerms: t.exposeString("usageTerms", { nullable: true }),
    attributionRequired: t.exposeBoolean("attributionRequired", { nullable: true }),
    artist: t.exposeString("artist", { nullable: true, description: "Plain text, HTML stripped." }),
    credit: t.exposeString("credit", { nullable: true, description: "Plain text, HTML stripped." }),
    descriptionUrl: t.exposeString("descriptionUrl", { nullable: true, description: "The file's page on Commons." }),
    missing: t.exposeBoolean("missing", { description: "Commons reports no such file." }),
    localWidth: t.exposeInt("localWidth", { nullable: true }),
    localHeight: t.exposeInt("localHeight", { nullable: true }),
    localBytes: t.exposeInt("localBytes", { nullable: true }),
    localHash: t.exposeString("localHash", { nullable: true, description: "sha256 of the local file." }),
    downloadedAt: t.expose("downloadedAt", { type: "DateTime", nullable: true }),
  }),
});
