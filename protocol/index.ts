/**
 * Public surface of protocol/: the pure wire layer (no I/O, no logger, no store imports) and the one
 * error type. Other folders import from here only. The JSON messages of the HTTP/WebSocket side
 * (zod schemas) are `protocol/json/`, so that loading the wire layer never loads zod.
 */
export { Op, isOp, opName } from './op.js';
export type { OpName } from './op.js';
export { HEADER_SIZE, PAYLOAD_MAX, decodeHeader, encodeHeader } from './header.js';
export type { Header } from './header.js';
export { FrameDecoder } from './frame-decoder.js';
export type { DecodeError, Frame } from './frame-decoder.js';
export { encodeFrame } from './frame-encoder.js';
export { ARGS_MAX, argsN, flagArg, joinStrings, oneArg, parseUint, splitArgs, writeArgs } from './payload.js';
export { DOMID_ANY, Feature, OFFERED_FEATURES } from './feature.js';
export { XSD_ERRORS, decodeErrorPayload, encodeErrorPayload, isXsdError } from './wire-error.js';
export type { XsdErrorName } from './wire-error.js';
export { XsError, XS_ERROR_CODES, isXsErrorCode, type XsErrorCode } from './xs-error.js';
export {
  parseDecimal,
  parseDirectory,
  parseDirectoryPart,
  parseOk,
  parseWatchEvent,
  replyPayload,
  requestPayload,
} from './messages.js';
