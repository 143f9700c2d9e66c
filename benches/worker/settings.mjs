// The secrets and bindings of `make bench-worker`, shared by bench.mjs and workerd-config.mjs. Bench-only values.

export const SIGNING_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
export const LINE_SECRETS = ["bench-line-secret-2026", "bench-line-secret-2025"]; // rotation: two values, newest first
export const FIXTURES_LINE_SECRET = "test_channel_secret"; // the LINE fixtures' secret, so they can be replayed as they are
export const WX = {
  token: "bench-wechat-token",
  aesKeys: ["SekishoBenchNewKey0123456789abcdefghijklmno", "SekishoBenchOldKey0123456789abcdefghijklmno"],
  appId: "wx1234567890abcdef",
  toUser: "gh_0123456789ab",
};
/** The bindings both Workers get (the same names Sekisho reads), forwarding to `${backendBase}/${name}`. */
export function benchBindings(backendBase, name = "sekisho") {
  const url = `${backendBase.replace(/\/$/, "")}/${name}`;
  return {
    BACKEND_URL: `${url}/events`,
    BACKEND_SIGNING_SECRET: SIGNING_SECRET,
    LINE_BENCH_CHANNEL_SECRET: LINE_SECRETS.join(","),
    LINE_CHECK_CHANNEL_SECRET: LINE_SECRETS.join(","),
    LINE_CHECK_BACKEND_URL: `${url}/check/line`,
    LINE_FIXTURES_CHANNEL_SECRET: FIXTURES_LINE_SECRET,
    LINE_FIXTURES_BACKEND_URL: `${url}/check/fixtures`,
    WECHAT_BENCH_TOKEN: WX.token,
    WECHAT_BENCH_ENCODING_AES_KEY: WX.aesKeys.join(" "),
    WECHAT_BENCH_APP_ID: WX.appId,
    WECHAT_CHECK_TOKEN: WX.token,
    WECHAT_CHECK_ENCODING_AES_KEY: WX.aesKeys.join(" "),
    WECHAT_CHECK_APP_ID: WX.appId,
    WECHAT_CHECK_BACKEND_URL: `${url}/check/wechat`,
  };
}
