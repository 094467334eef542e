/**
 * Shapes of a Llama-family model's matrices from its config.json (hidden, intermediate,
 * heads, KV heads, head_dim, vocab). Used to name and shape the matrices of DFloat11
 * units, whose files only store flat element counts.
 */

function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

/**
 * A lookup from tensor name to shape, or `undefined` for names it does not know.
 * @example
 * const shapeOf = llamaShapes(config);
 * shapeOf('model.layers.0.self_attn.q_proj.weight'); // [hidden, hidden]
 */
export function llamaShapes(config: Record<string, unknown>): (name: string) => number[] | undefined {
  const h = positiveInt(config.hidden_size);
  const inter = positiveInt(config.intermediate_size);
  const heads = positiveInt(config.num_attention_heads);
  const kv = positiveInt(config.num_key_value_heads) ?? heads;
  const vocab = positiveInt(config.vocab_size);
  const headDim = positiveInt(config.head_dim) ?? (h && heads && h % heads === 0 ? h / heads : undefined);
  const table: [RegExp, number[] | undefined][] = [
    [/(^|\.)self_attn\.q_proj\.weight$/, heads && headDim && h ? [heads * headDim, h] : undefined],
    [/(^|\.)self_attn\.k_proj\.weight$/, kv && headDim && h ? [kv * headDim, h] : undefined],
    [/(^|\.)self_attn\.v_proj\.weight$/, kv && headDim && h ? [kv * headDim, h] : undefined],
    [/(^|\.)self_attn\.o_proj\.weight$/, heads && headDim && h ? [h, heads * headDim] : undefined],
    [/(^|\.)mlp\.gate_proj\.weight$/, inter && h ? [inter, h] : undefined],
    [/(^|\.)mlp\.up_proj\.weight$/, inter && h ? [inter, h] : undefined],
    [/(^|\.)mlp\.down_proj\.weight$/, inter && h ? [h, inter] : undefined],
    [/(^|\.)embed_tokens\.weight$/, vocab && h ? [vocab, h] : undefined],
    [/(^|\.)lm_head\.weight$/, vocab && h ? [vocab, h] : undefined],
  ];
  return (name) => table.find(([re]) => re.test(name))?.[1];
}
