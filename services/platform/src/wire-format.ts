import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";

/**
 * The encodings both request paths (connect-node's handler and the unary fast path) agree on, so a call gets
 * the same bytes back whichever path serves it.
 */
export const acceptCompression = [compressionGzip, compressionBrotli];

/** Responses smaller than this are sent uncompressed, whatever the client accepts (connect's default). */
export const compressMinBytes = 1024;

/**
 * Reject, never replace, bytes that are not UTF-8: a replaced character would store something the client never
 * sent. connect's JSON serialization takes its decoder from these options, though the type does not say so.
 */
export const jsonOptions = { textDecoder: new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }) } as object;
