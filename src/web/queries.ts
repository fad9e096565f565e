/** The GraphQL documents behind each page and form; the pages read nothing else. */

/** Where a work stands in review; the job is the one the last rejection queued. */
const REVIEW_STATE = `fragment ReviewState on ArtworkReview {
  state reviewedAt reviewedBy needsPerson fallbackStep fallbackSteps
  fallbackJob { id number status progress progressTotal error force forcesOver createdAt }
}`;

const CARD = `fragment Card on Artwork {
  qid title titles { language text } inception inceptionPrecision state
  creators { attribution creator { qid label } }
  image { localHash }
  currentDescription { text source quality { flags } }
  review { state needsPerson fallbackStep fallbackSteps fallbackJob { number status } }
}`;

const PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }";

export const COLLECTION = `query Collection($filter: ArtworkFilter, $first: Int, $last: Int, $after: String, $before: String) {
  artworksConnection(filter: $filter, first: $first, last: $last, after: $after, before: $before) {
    totalCount ${PAGE_INFO}
    edges { cursor node { ...Card } }
  }
  creators { qid label }
}
${CARD}`;

/** The creator filter's choices alone, for a search page whose words were refused. */
export const CREATORS = `query Creators { creators { qid label } }`;

export const SEARCH = `query Search($query: String!, $filter: SearchFilter, $mode: SearchMode, $first: Int, $last: Int, $after: String, $before: String) {
  search(query: $query, filter: $filter, mode: $mode, first: $first, last: $last, after: $after, before: $before) {
    totalCount mode ${PAGE_INFO}
    edges { cursor node { snippet matchedBy artwork { ...Card } } }
  }
  creators { qid label }
}
${CARD}`;

const SYNC_RUN = `number status trigger full startedAt finishedAt durationSeconds seen created updated unchanged removed skippedNoImage failed imagesDownloaded jobsQueued error`;

/** What a page that would be empty needs to say why. */
export const FIRST_RUN = `query FirstRun {
  stats { artworks withImage described }
  status {
    lastSync { ${SYNC_RUN} }
    nextSyncAt workerAlive backlog
    heartbeats { role alive modelStatus modelError }
  }
}`;

const ITEM = "qid label wikidataUrl";

export const ARTWORK = `query Artwork($id: ID!, $history: Int!, $reviews: Int!) {
  artwork(id: $id) {
    __typename
    ... on NotFoundError { message }
    ... on InvalidIdError { message }
    ... on Artwork {
      qid title inception inceptionPrecision state mergedIntoQid wikidataUrl commonsUrl altText
      titles { language text }
      creators { attribution creator { ${ITEM} } }
      instanceOf { ${ITEM} } genres { ${ITEM} } materials { ${ITEM} } collections { ${ITEM} } locations { ${ITEM} } depicts { ${ITEM} }
      dimensions { height heightUnit width widthUnit }
      image { fileTitle url localHash localWidth localHeight licenseShortName usageTerms attributionRequired artist credit descriptionUrl }
      currentDescription { ...Version }
      review { ...ReviewState }
      descriptions(limit: $history) { ...Version }
      descriptionsConnection(first: 1) { totalCount }
      jobs(first: 10) { edges { node { id number status progress progressTotal error force forcesOver createdAt } } }
    }
  }
  generationDefaults {
    params { prompt numBeams maxNewTokens minNewTokens targetWords lengthPenalty earlyStopping noRepeatNgramSize repetitionPenalty imageSplitting cleanMarkdown }
  }
}
fragment Version on Description {
  id text language source author reason createdAt reviewState imageFile
  reviews(limit: $reviews) { verdict note reviewer createdAt fallbackStep exhausted }
  generation { modelId modelRevision device prompt numBeams maxNewTokens minNewTokens targetWords lengthPenalty earlyStopping noRepeatNgramSize repetitionPenalty imageSplitting }
  reproduction { cleanMarkdown }
  outcome { generatedTokens finishReason trimmed timings { preprocessMs visionMs prefillMs decodeMs totalMs } }
  quality { flags risk }
}
${REVIEW_STATE}`;

export const JOBS = `query Jobs($status: [JobStatus!], $first: Int, $last: Int, $after: String, $before: String) {
  jobs(status: $status, first: $first, last: $last, after: $after, before: $before) {
    ${PAGE_INFO}
    edges { node { id number status progress progressTotal error attempts maxAttempts reason createdAt startedAt finishedAt artwork { qid title } } }
  }
  status { workerAlive backlog jobs { queued running succeeded failed cancelled } heartbeats { role alive modelStatus modelError } }
}`;

export const STATUS = `query Status {
  status {
    now nextSyncAt workerAlive descriptionsLastHour averageDescriptionSeconds backlog backlogSeconds backlogDoneAt
    lastSync { ${SYNC_RUN} }
    lastSuccessfulSync { number finishedAt }
    jobs { queued running succeeded failed cancelled }
    heartbeats { id role pid hostname startedAt beatAt ageSeconds alive modelStatus modelError modelId modelRevision device dtypes { module dtype } }
    semanticSearch { enabled modelId embedded described command message }
  }
  stats { artworks withImage described }
  syncRuns(limit: 10) { ${SYNC_RUN} failures(limit: 20) { stage itemQid fileTitle reason createdAt } }
}`;

const ERRORS = "__typename ... on Error { message }";

export const SET_DESCRIPTION = `mutation SetDescription($id: ID!, $text: String!, $author: String, $reason: String, $replaces: ID) {
  setDescription(id: $id, text: $text, author: $author, reason: $reason, replaces: $replaces) { ${ERRORS} ... on Description { id } }
}`;

export const REGENERATE = `mutation Regenerate($id: ID!, $params: GenerationParamsInput, $reason: String, $force: Boolean, $replaces: ID) {
  regenerateDescription(id: $id, params: $params, reason: $reason, force: $force, replaces: $replaces) { ${ERRORS} ... on Job { number } }
}`;

export const CANCEL_JOB = `mutation CancelJob($id: ID!) {
  cancelJob(id: $id) { ${ERRORS} ... on Job { number status } }
}`;

/**
 * The review queue. Written against the connection type only (no error-union member), so it reads
 * the same whether reviewQueue answers `InvalidInputError | QueryReviewQueueConnection` or the
 * connection itself; the page checks cursors before asking (review-queue.ts).
 */
export const REVIEW_QUEUE = `query ReviewQueue($first: Int, $last: Int, $after: String, $before: String, $filter: ReviewQueueFilter, $filtered: Boolean!, $matching: ArtworkFilter) {
  reviewQueue(first: $first, last: $last, after: $after, before: $before, filter: $filter) {
    __typename
    ... on QueryReviewQueueConnection {
      ${PAGE_INFO}
      edges {
        cursor
        node {
          id text reviewState source author createdAt
          quality { flags risk checks { name value detail } }
          artwork {
            qid title titles { language text } inception inceptionPrecision altText
            creators { attribution creator { qid label } }
            image { localHash localWidth localHeight }
          }
        }
      }
    }
  }
  stats { described quality { current { byReviewState { state count } } } }
  matching: artworksConnection(first: 0, filter: $matching) @include(if: $filtered) { totalCount }
}`;

/** Whether anything waits before and after a position of the queue. */
export const REVIEW_NEIGHBOURS = `query ReviewNeighbours($cursor: String!, $filter: ReviewQueueFilter) {
  previous: reviewQueue(last: 1, before: $cursor, filter: $filter) { __typename ... on QueryReviewQueueConnection { edges { cursor } } }
  next: reviewQueue(first: 1, after: $cursor, filter: $filter) { __typename ... on QueryReviewQueueConnection { edges { cursor } } }
}`;

export const REVIEW_DESCRIPTION = `mutation ReviewDescription($id: ID!, $verdict: ReviewVerdict!, $note: String, $reviewer: String, $expectedState: ReviewState, $expectCurrent: Boolean) {
  reviewDescription(id: $id, verdict: $verdict, note: $note, reviewer: $reviewer, expectedState: $expectedState, expectCurrent: $expectCurrent) { ${ERRORS} ... on ConflictError { changed } ... on Review { verdict } }
}`;
