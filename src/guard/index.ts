/** Public surface of guard/: rate limiting, DNS cookies, access lists. */
export { createAcl } from './acl.js'
export type { AddressAcl } from './acl.js'
export { createRrl, RRL_ACTION, RRL_CATEGORY } from './rrl.js'
export type { Rrl, RrlAction, RrlCategory, RrlCounters, RrlOptions } from './rrl.js'
export { checkServerCookie, makeServerCookie, parseCookieSecret, randomCookieSecret } from './server-cookie.js'
export type { CookieSecrets } from './server-cookie.js'
