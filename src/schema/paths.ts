// The two paths a config may leave out, as constants without the schema
// around them: the CLI's way to the daemon (config/peek.ts) needs the
// default socket without loading zod, and the schema uses the same values.

/** Directory of the store. */
export const DEFAULT_STATE = '/var/lib/dispatcher';
/** Control socket of the daemon. */
export const DEFAULT_SOCKET = '/run/dispatcher/dispatcher.sock';
