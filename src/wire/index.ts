/**
 * The public surface of wire/: names, records, the message shapes, the query
 * decoder, the response encoder and the EDNS option builders. Other folders
 * import only this file. name-scan.ts stays internal.
 */
export {
  MAX_LABEL_BYTES,
  MAX_NAME_WIRE_BYTES,
  isSubdomainOf,
  labelCount,
  labelToText,
  labelsToName,
  nameToLabels,
  nameToWire,
  nameWireLength,
  parentName,
  splitName,
  toFqdn,
} from './name.js'
export { EDNS_OPTION, OPCODE, RCODE, RRCLASS, RRTYPE, isRdataName, rdataNames } from './record.js'
export type { RdataName, RdataPart, ResourceRecord } from './record.js'
export type {
  ClientSubnet,
  DecodeResult,
  EdnsOption,
  Query,
  QueryEdns,
  Response,
  ResponseEdns,
} from './message.js'
export { DECODE_REASON, decodeQuery } from './decode-query.js'
export type { DecodeReason } from './decode-query.js'
export { ENCODE_ERROR, encodeResponse } from './encode-response.js'
export { clientSubnetOption, nsidOption } from './edns.js'
