import { builder } from "../builder.js";
import { ConflictError, InvalidIdError, InvalidInputError, NotFoundError, UnauthorizedError } from "../errors.js";

export const ErrorInterface = builder.interfaceRef<Error>("Error").implement({
  description: "An expected failure: the request was understood and refused.",
  fields: (t) => ({ message: t.exposeString("message") }),
});

builder.objectType(NotFoundError, {
  name: "NotFoundError",
  interfaces: [ErrorInterface],
  isTypeOf: (v) => v instanceof NotFoundError,
  fields: (t) => ({
    requestedId: t.exposeString("id", { description: "The id as the request gave it." }),
    id: t.exposeString("id", {
      deprecationReason:
        "Use requestedId. A field named id of type String! conflicts with Node.id (ID!) in one selection, which Relay's compiler writes into every union selection.",
    }),
  }),
});

builder.objectType(InvalidIdError, {
  name: "InvalidIdError",
  interfaces: [ErrorInterface],
  isTypeOf: (v) => v instanceof InvalidIdError,
  fields: (t) => ({
    requestedId: t.exposeString("id", { description: "The id as the request gave it." }),
    id: t.exposeString("id", {
      deprecationReason:
        "Use requestedId. A field named id of type String! conflicts with Node.id (ID!) in one selection, which Relay's compiler writes into every union selection.",
    }),
  }),
});

builder.objectType(InvalidInputError, {
  name: "InvalidInputError",
  interfaces: [ErrorInterface],
  isTypeOf: (v) => v instanceof InvalidInputError,
  fields: (t) => ({ field: t.exposeString("field") }),
});

builder.objectType(UnauthorizedError, {
  name: "UnauthorizedError",
  interfaces: [ErrorInterface],
  isTypeOf: (v) => v instanceof UnauthorizedError,
  fields: () => ({}),
});

builder.objectType(ConflictError, {
  name: "ConflictError",
  description: "Someone else changed the same thing since the caller looked (the state it named is gone); nothing was written. Look again, then retry.",
  interfaces: [ErrorInterface],
  isTypeOf: (v) => v instanceof ConflictError,
  fields: (t) => ({ changed: t.exposeID("id", { description: "The global id of what changed meanwhile (a Description, or the Artwork whose current description moved)." }) }),
});
