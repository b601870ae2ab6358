/**
 * One length-prefixed message of the gRPC family of protocols: a flags byte, the length as a big-endian uint32,
 * then the bytes (a message, or gRPC-web's trailers, or Connect's end of stream, as the flags say).
 */
export function envelope(flags: number, data: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + data.length);
  frame[0] = flags;
  frame.writeUInt32BE(data.length, 1);
  frame.set(data, 5);
  return frame;
}
