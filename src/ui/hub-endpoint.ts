/**
 * The Hub the page talks to, for downloads and pushes alike: https://huggingface.co (undefined),
 * or the mirror `?hub=<url>` names (tests serve a fake one from 127.0.0.1).
 */
export function hubEndpoint(search = location.search): string | undefined {
  return new URLSearchParams(search).get('hub') ?? undefined;
}
