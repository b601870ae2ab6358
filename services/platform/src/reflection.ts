import { create, createRegistry, fromBinary, toBinary, type DescFile, type DescMessage, type DescService, type MessageShape } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import * as v1 from "@local-e-grocery/gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "@local-e-grocery/gen/grpc/reflection/v1alpha/reflection_pb.js";

/**
 * gRPC server reflection (v1 and v1alpha, which share their messages), so `buf curl --reflect` and `grpcurl`
 * work without proto files. Each answer carries the requested file plus the dependencies this stream has not
 * sent yet.
 */
export function reflectionRoutes(services: readonly DescService[], extraFiles: readonly DescFile[] = []): (router: ConnectRouter) => void {
  const files = new Map<string, DescFile>();
  const collect = (file: DescFile) => {
    if (files.has(file.name)) return;
    files.set(file.name, file);
    file.dependencies.forEach(collect);
  };
  [...services, v1.ServerReflection, v1alpha.ServerReflection].forEach((s) => collect(s.file));
  extraFiles.forEach(collect);
  const registry = createRegistry(...files.values());
  const encoded = new Map([...files].map(([name, file]) => [name, toBinary(FileDescriptorProtoSchema, file.proto)]));
  const serviceNames = [...services.map((s) => s.typeName), v1.ServerReflection.typeName, v1alpha.ServerReflection.typeName].sort();

  const extensionOf = (typeName: string, number: number) => {
    const message = registry.getMessage(typeName);
    return message ? registry.getExtensionFor(message, number) : undefined;
  };
  const fileOfSymbol = (symbol: string): DescFile | undefined => {
    const direct = registry.get(symbol);
    if (direct) return direct.file;
    // A method or field: look up its parent.
    const parent = registry.get(symbol.slice(0, symbol.lastIndexOf(".")));
    return parent?.file;
  };

  async function* serve(requests: AsyncIterable<v1.ServerReflectionRequest>) {
    const sent = new Set<string>();
    const withDependencies = (file: DescFile): Uint8Array[] => {
      const out: Uint8Array[] = [];
      const visit = (f: DescFile) => {
        if (sent.has(f.name)) return;
        sent.add(f.name);
        const bytes = encoded.get(f.name);
        if (bytes) out.push(bytes);
        f.dependencies.forEach(visit);
      };
      visit(file);
      return out;
    };
    for await (const req of requests) {
      const res = create(v1.ServerReflectionResponseSchema, { validHost: req.host, originalRequest: req });
      const notFound = (what: string) => ({
        case: "errorResponse" as const,
        value: create(v1.ErrorResponseSchema, { errorCode: 5, errorMessage: `${what} not found` }),
      });
      const filesResponse = (file: DescFile) => ({
        case: "fileDescriptorResponse" as const,
        value: create(v1.FileDescriptorResponseSchema, { fileDescriptorProto: withDependencies(file) }),
      });
      const mr = req.messageRequest;
      switch (mr.case) {
        case "listServices":
          res.messageResponse = {
            case: "listServicesResponse",
            value: create(v1.ListServiceResponseSchema, { service: serviceNames.map((name) => ({ name })) }),
          };
          break;
        case "fileByFilename": {
          const file = files.get(mr.value);
          res.messageResponse = file ? filesResponse(file) : notFound(`file ${mr.value}`);
          break;
        }
        case "fileContainingSymbol": {
          const file = fileOfSymbol(mr.value);
          res.messageResponse = file ? filesResponse(file) : notFound(`symbol ${mr.value}`);
          break;
        }
        case "fileContainingExtension": {
          const ext = extensionOf(mr.value.containingType, mr.value.extensionNumber);
          res.messageResponse = ext ? filesResponse(ext.file) : notFound(`extension ${mr.value.extensionNumber} of ${mr.value.containingType}`);
          break;
        }
        case "allExtensionNumbersOfType": {
          const message = registry.getMessage(mr.value);
          if (!message) {
            res.messageResponse = notFound(`type ${mr.value}`);
            break;
          }
          const numbers: number[] = [];
          for (const t of registry) if (t.kind === "extension" && t.extendee.typeName === mr.value) numbers.push(t.number);
          res.messageResponse = {
            case: "allExtensionNumbersResponse",
            value: create(v1.ExtensionNumberResponseSchema, { baseTypeName: mr.value, extensionNumber: numbers }),
          };
          break;
        }
        default:
          res.messageResponse = {
            case: "errorResponse",
            value: create(v1.ErrorResponseSchema, { errorCode: 3, errorMessage: "unsupported request" }),
          };
      }
      yield res;
    }
  }

  return (router) => {
    router.service(v1.ServerReflection, { serverReflectionInfo: (reqs) => serve(reqs) });
    // v1alpha messages are wire-identical to v1: convert through bytes and serve both with one implementation.
    router.service(v1alpha.ServerReflection, {
      async *serverReflectionInfo(reqs) {
        for await (const res of serve(mapIterable(reqs, (r) => convert(v1alpha.ServerReflectionRequestSchema, v1.ServerReflectionRequestSchema, r)))) {
          yield convert(v1.ServerReflectionResponseSchema, v1alpha.ServerReflectionResponseSchema, res);
        }
      },
    });
  };
}

function convert<F extends DescMessage, T extends DescMessage>(from: F, to: T, message: MessageShape<F>): MessageShape<T> {
  return fromBinary(to, toBinary(from, message));
}

async function* mapIterable<A, B>(source: AsyncIterable<A>, fn: (a: A) => B): AsyncIterable<B> {
  for await (const a of source) yield fn(a);
}
