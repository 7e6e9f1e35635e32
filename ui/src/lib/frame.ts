/** Two animation frames from now (the first may come before layout), on the wall clock. */
export const painted = () =>
  new Promise<number>((resolve) => requestAnimationFrame(() => requestAnimationFrame(() => resolve(performance.timeOrigin + performance.now()))));
