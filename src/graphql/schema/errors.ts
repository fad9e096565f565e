import { builder } from "../builder.js";
import { InvalidIdError, InvalidInputError, NotFoundError, UnauthorizedError } from "../errors.js";

export const ErrorInterface = builder.interfaceRef<Error>("Error").implement({
  description: "An expected failure: the request was understood and refused.",
  fields: (t) => ({ message: t.exposeString("message") }),
});

builder.objectType(NotFoundError, {
  name: "NotFoundError",
  interfaces: [ErrorInterface],
  isTypeOf: (v) => v instanceof NotFoundError,
  fields: (t) => ({ id: t.exposeString("id") }),
});

builder.objectType(InvalidIdError, {
  name: "InvalidIdError",
  interfaces: [ErrorInterface],
  isTypeOf: (v) => v instanceof InvalidIdError,
  fields: (t) => ({ id: t.exposeString("id") }),
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
