/** Expected failures, returned as typed results (Pothos errors plugin), never masked. */
export class NotFoundError extends Error {
  override name = "NotFoundError";
  constructor(readonly id: string, message = `No artwork with id "${id}"`) {
    super(message);
  }
}

export class InvalidIdError extends Error {
  override name = "InvalidIdError";
  constructor(readonly id: string, expected = "a Wikidata QID like Q5432 or a global id") {
    super(`"${id}" is not a valid id: expected ${expected}`);
  }
}

export class InvalidInputError extends Error {
  override name = "InvalidInputError";
  constructor(readonly field: string, message: string) {
    super(message);
  }
}

export class UnauthorizedError extends Error {
  override name = "UnauthorizedError";
  constructor(message = "This mutation needs the header Authorization: Bearer <API_TOKEN>") {
    super(message);
  }
}
