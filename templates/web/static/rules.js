// Egg variable rules (Laravel syntax, e.g. `required|string|max:64`) checked in the
// browser before a form is sent, with the messages the API uses. The API checks again
// (shardlyn_proto::rules); a rule this module does not know is left to it.

const NUMERIC = /^[ \t\n\r\v\f]*[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[ \t\n\r\v\f]*$/;
const INTEGER = /^[+-]?[0-9]+$/;

/** Splits a rule text into `[name, argument]` pairs (a regex argument may hold `|`). */
export function parseRules(text) {
  const out = [];
  let rest = String(text || '');
  while (rest.length) {
    const m = /^(regex|not_regex):(\/.*?\/[a-z]*)(?:\||$)/.exec(rest);
    if (m) {
      out.push([m[1], m[2]]);
      rest = rest.slice(m[0].length);
      continue;
    }
    const bar = rest.indexOf('|');
    const part = bar < 0 ? rest : rest.slice(0, bar);
    rest = bar < 0 ? '' : rest.slice(bar + 1);
    const colon = part.indexOf(':');
    if (part) out.push(colon < 0 ? [part.trim(), ''] : [part.slice(0, colon).trim(), part.slice(colon + 1)]);
  }
  return out;
}

/** A PCRE `/pattern/flags` as a JS RegExp, or null when JS cannot read it. */
function regexOf(arg) {
  const m = /^\/(.*)\/([a-z]*)$/s.exec(arg);
  if (!m) return null;
  try {
    return new RegExp(m[1], m[2].replace(/[^imsu]/g, ''));
  } catch {
    return null;
  }
}

/**
 * Checks `value` of the variable shown as `label`; the API's message for the first
 * failing rule, or null.
 */
export function check(label, value, rulesText) {
  const rules = parseRules(rulesText);
  const names = rules.map(([n]) => n);
  const blank = value.trim() === '';
  const numeric = names.includes('numeric') || names.includes('integer');
  const asNumber = numeric && NUMERIC.test(value);
  const size = asNumber ? Number(value) : [...value].length;
  const unit = asNumber ? '' : ' characters';
  const field = (tail) => `The ${label} field ${tail}.`;
  for (const [name, arg] of rules) {
    if (name === 'required') {
      if (blank) return field('is required');
      continue;
    }
    if (blank && names.includes('nullable')) return null;
    const nums = arg.split(',').map(Number);
    switch (name) {
      case 'string': if (blank) return field('must be a string'); break;
      case 'numeric': if (!NUMERIC.test(value)) return field('must be a number'); break;
      case 'integer': if (!INTEGER.test(value.trim())) return field('must be an integer'); break;
      case 'boolean': if (!['1', '0', 'true', 'false'].includes(value)) return field('must be true or false'); break;
      case 'max': if (size > nums[0]) return field(`must not be greater than ${arg}${unit}`); break;
      case 'min': if (size < nums[0]) return field(`must be at least ${arg}${unit}`); break;
      case 'size': if (size !== nums[0]) return field(`must be ${arg}${unit}`); break;
      case 'between':
        if (size < nums[0] || size > nums[1]) return field(`must be between ${nums[0]} and ${nums[1]}${unit}`);
        break;
      case 'in': if (!arg.split(',').includes(value)) return `The selected ${label} is invalid.`; break;
      case 'not_in': if (arg.split(',').includes(value)) return `The selected ${label} is invalid.`; break;
      case 'regex': {
        const re = regexOf(arg);
        if (re && !re.test(value)) return field('format is invalid');
        break;
      }
      case 'alpha_dash':
        if (!/^[\p{L}\p{M}\p{N}_-]+$/u.test(value)) return field('must only contain letters, numbers, dashes, and underscores');
        break;
      case 'alpha_num':
        if (!/^[\p{L}\p{M}\p{N}]+$/u.test(value)) return field('must only contain letters and numbers');
        break;
      default: break;
    }
  }
  return null;
}

/** The `<option>`s an `in:` rule allows, if any. */
export function choices(rulesText) {
  const rule = parseRules(rulesText).find(([n]) => n === 'in');
  return rule ? rule[1].split(',') : null;
}
