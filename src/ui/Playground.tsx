import { useState } from 'react';
import { activeAdapters, useLibraryStore } from './library-store.ts';
import { useModelStore } from './model-store.ts';
import { formatWeight } from './format.ts';
import { EXPERT_COLOURS, ExpertSwatch } from './RouteCard.tsx';
import { useRouteStore } from './route-store.ts';
import type { GenerationResult } from '../worker/api.ts';

/** Generate text with the loaded model: prompt, sampling options, tokens streaming in. */
export function Playground() {
  const model = useModelStore((s) => s.model);
  const generation = useModelStore((s) => s.generation);
  const generate = useModelStore((s) => s.generate);
  const [prompt, setPrompt] = useState('Once upon a time');
  const [maxNewTokens, setMaxNewTokens] = useState(200);
  const [temperature, setTemperature] = useState(0.8);
  const [topP, setTopP] = useState(0.9);
  const [seed, setSeed] = useState(0);
  if (!model.info) return null;

  const running = generation.state === 'running';
  const text =
    generation.state === 'running'
      ? generation.text
      : generation.state === 'done'
        ? generation.result.text
        : '';
  return (
    <section className="panel" data-testid="playground">
      <h2>Playground</h2>
      <form
        className="playground"
        onSubmit={(e) => {
          e.preventDefault();
          void generate(prompt, { maxNewTokens, temperature, topP, seed });
        }}
      >
        <label className="wide">
          Prompt
          <textarea
            value={prompt}
            rows={2}
            onChange={(e) => {
              setPrompt(e.target.value);
            }}
            data-testid="prompt"
          />
        </label>
        <label>
          New tokens
          <input
            type="number"
            min={1}
            max={4096}
            value={maxNewTokens}
            onChange={(e) => {
              setMaxNewTokens(Number(e.target.value));
            }}
            data-testid="max-new-tokens"
          />
        </label>
        <label title="0 always picks the most likely token">
          Temperature
          <input
            type="number"
            min={0}
            max={2}
            step={0.1}
            value={temperature}
            onChange={(e) => {
              setTemperature(Number(e.target.value));
            }}
            data-testid="temperature"
          />
        </label>
        <label title="Sample only from the most likely tokens that make up this much probability">
          Top-p
          <input
            type="number"
            min={0.05}
            max={1}
            step={0.05}
            value={topP}
            onChange={(e) => {
              setTopP(Number(e.target.value));
            }}
          />
        </label>
        <label>
          Seed
          <input
            type="number"
            value={seed}
            onChange={(e) => {
              setSeed(Number(e.target.value));
            }}
          />
        </label>
        <div className="generate-row">
          <button type="submit" disabled={running}>
            {running ? 'Generating…' : 'Generate'}
          </button>
          <ActiveAdapters />
        </div>
      </form>
      {generation.state === 'done' && generation.result.routing ? (
        <RoutedText routing={generation.result.routing} />
      ) : (
        <pre className="output" data-testid="output" aria-live="polite">
          {text}
        </pre>
      )}
      {generation.state === 'done' && (
        <p className="muted" data-testid="generation-stats">
          {generation.result.newTokens} tokens in {(generation.result.ms / 1000).toFixed(2)} s (
          {((generation.result.newTokens * 1000) / generation.result.ms).toFixed(1)} tokens/s)
        </p>
      )}
      {generation.state === 'failed' && (
        <p className="error" role="alert">
          {generation.message}
        </p>
      )}
    </section>
  );
}

/** What the text is generated with: the base model plus the library adapters in use, or the router. */
function ActiveAdapters() {
  const items = useLibraryStore((s) => s.items);
  const use = useLibraryStore((s) => s.use);
  const router = useRouteStore((s) => (s.applied && s.job.state === 'done' ? s.job.result : null));
  const text = router
    ? `Base model + a router between ${router.experts.map((e) => e.name).join(', ')}`
    : [
        'Base model',
        ...activeAdapters(items, use).map(
          ({ item, weight }) => `${item.name} × ${formatWeight(weight)}`,
        ),
      ].join(' + ');
  return (
    <span className="muted active-adapters" data-testid="active-adapters" aria-live="polite">
      {text}
    </span>
  );
}

/**
 * A generation through a router: each new token on the colour of the adapter its gates chose
 * (averaged over the modules, or in one layer), its name in the token's title, and the legend.
 */
function RoutedText({ routing }: { routing: NonNullable<GenerationResult['routing']> }) {
  const [layer, setLayer] = useState(-1);
  const layers = routing.tokens[0]?.layers.length ?? 0;
  const chosen = (t: (typeof routing.tokens)[number]) => (layer < 0 ? t.expert : t.layers[layer]);
  return (
    <>
      <pre className="output routed" data-testid="output" aria-live="polite">
        {routing.prompt}
        {routing.tokens.map((t, i) => {
          const e = chosen(t);
          return e < 0 ? (
            <span key={i}>{t.text}</span>
          ) : (
            <span
              key={i}
              className={`routed-token expert-${e % EXPERT_COLOURS}`}
              title={routing.experts[e]}
              data-expert={e}
            >
              {t.text}
            </span>
          );
        })}
      </pre>
      <div className="route-legend" data-testid="route-legend">
        <label>
          Colour by{' '}
          <select
            value={layer}
            data-testid="route-layer"
            onChange={(e) => {
              setLayer(Number(e.target.value));
            }}
          >
            <option value={-1}>all layers (mean gate)</option>
            {Array.from({ length: layers }, (_, l) => (
              <option key={l} value={l}>
                layer {l}
              </option>
            ))}
          </select>
        </label>
        {routing.experts.map((name, e) => {
          const n = routing.tokens.filter((t) => chosen(t) === e).length;
          return (
            <span key={name} className="legend-item">
              <ExpertSwatch index={e} /> {name} ({n} {n === 1 ? 'token' : 'tokens'})
            </span>
          );
        })}
      </div>
    </>
  );
}
