// What the API server does with a label selector (matchLabels and matchExpressions), for the tests that
// check which pods and namespaces a webhook registration or a Service selects.
export function selects(selector: any, labels: Record<string, string>): boolean {
  const ml = Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  return ml && (selector?.matchExpressions ?? []).every((e: any) => {
    const has = Object.hasOwn(labels, e.key);
    switch (e.operator) {
      case 'In': return has && e.values.includes(labels[e.key]);
      case 'NotIn': return !has || !e.values.includes(labels[e.key]);
      case 'Exists': return has;
      case 'DoesNotExist': return !has;
      default: throw new Error(`operator ${e.operator}`);
    }
  });
}
