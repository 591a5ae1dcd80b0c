// Every call of issue 12 through openapi-typescript + openapi-fetch, type-checked by tsc
// (strict) against the types generated from openapi/openapi.json. Run by
// tests/clients/test_typescript_client.py, which passes its inputs in the environment.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

declare const process: { env: Record<string, string | undefined>; exitCode: number };

type ArrayResult = components["schemas"]["ArrayResult"];
const env = (name: string): string => process.env[name] ?? "";
const PNG = [0x89, 0x50, 0x4e, 0x47];
const results: Record<string, string> = {};

async function check(name: string, call: () => Promise<boolean>): Promise<void> {
  try {
    results[name] = (await call()) ? "ok" : "wrong answer";
  } catch (error) {
    results[name] = `error: ${String(error)}`;
  }
}

// `unknown`: openapi-fetch types a GET's `parseAs` answer as the schema's `string` when the
// options object is optional (the data is an ArrayBuffer at run time).
const isPng = (data: unknown): boolean =>
  data instanceof ArrayBuffer && PNG.every((byte, i) => new Uint8Array(data)[i] === byte);
const upload = new Blob([Uint8Array.from(atob(env("UPLOAD_PNG")), (c) => c.charCodeAt(0))], {
  type: "image/png",
});
const multipart = (spec: object, image: Blob) => () => {
  const form = new FormData();
  form.append("spec", JSON.stringify(spec));
  form.append("image", image, "x.png");
  return form;
};

async function main(): Promise<void> {
  const api = createClient<paths>({ baseUrl: env("OPEN_URL") });

  await check("health", async () => (await api.GET("/healthz")).data?.status === "ok");
  await check("readiness", async () => (await api.GET("/readyz")).data?.status === "ready");
  await check("listKernels", async () => {
    const { data } = await api.GET("/kernels");
    return data?.some((kernel) => kernel.name === "sobel-x") ?? false;
  });
  await check("getKernel", async () => {
    const { data } = await api.GET("/kernels/{name}", { params: { path: { name: "sobel-x" } } });
    return data?.kernel[1][2] === 2;
  });
  await check("ascent", async () =>
    isPng((await api.GET("/images/ascent", { parseAs: "arrayBuffer" })).data),
  );

  await check("convolve png", async () => {
    const answer = await api.POST("/convolve", {
      body: { image: "ascent", preset: "sobel-x" },
      parseAs: "arrayBuffer",
    });
    return isPng(answer.data);
  });
  await check("pool png", async () =>
    isPng((await api.POST("/pool", { body: { size: 2 }, parseAs: "arrayBuffer" })).data),
  );
  await check("pipeline png", async () => {
    const steps: components["schemas"]["PipelineSpec"]["steps"] = [
      { op: "convolve", preset: "sobel-x" },
      { op: "pool", size: 2 },
    ];
    return isPng((await api.POST("/pipeline", { body: { steps }, parseAs: "arrayBuffer" })).data);
  });

  await check("convolve array", async () => {
    const { data } = await api.POST("/convolve/array", {
      body: { image: { pixels: [[0, 50], [100, 150]] }, kernel: [[1, 2, 1]], scale: "raw" },
    });
    const result: ArrayResult | undefined = data;
    return result?.dtype === "float32" && result.width === 2;
  });
  await check("pool array", async () => {
    const { data } = await api.POST("/pool/array", { body: { image: "ascent", size: [2, 4] } });
    return data?.height === 256 && data.width === 128;
  });
  await check("pipeline array", async () => {
    const { data } = await api.POST("/pipeline/array", {
      body: { image: "ascent", steps: [{ op: "pool", size: 8, method: "avg" }] },
    });
    return data?.width === 64;
  });

  await check("convolve upload", async () => {
    const spec = { preset: "sobel-x" } as const;
    const answer = await api.POST("/convolve/upload", {
      body: { spec },
      bodySerializer: multipart(spec, upload),
      parseAs: "arrayBuffer",
    });
    return isPng(answer.data);
  });
  await check("pool upload", async () => {
    const spec = { size: 2, method: "min" } as const;
    const answer = await api.POST("/pool/upload", {
      body: { spec },
      bodySerializer: multipart(spec, upload),
      parseAs: "arrayBuffer",
    });
    return isPng(answer.data);
  });
  await check("pipeline upload", async () => {
    const spec: components["schemas"]["PipelineSpec"] = { steps: [{ op: "pool", size: 2 }] };
    const answer = await api.POST("/pipeline/upload", {
      body: { spec },
      bodySerializer: multipart(spec, upload),
      parseAs: "arrayBuffer",
    });
    return isPng(answer.data);
  });

  const examples: Record<string, Record<string, { value: never }>> = JSON.parse(env("EXAMPLES"));
  await check("examples", async () => {
    for (const name of ["convolve", "pool", "pipeline"] as const) {
      for (const example of Object.values(examples[name])) {
        const answer = await api.POST(`/${name}`, { body: example.value, parseAs: "arrayBuffer" });
        if (!isPng(answer.data)) return false;
      }
      for (const example of Object.values(examples[`${name}/array`])) {
        const { data } = await api.POST(`/${name}/array`, { body: example.value });
        if (!data || data.height < 1) return false;
      }
    }
    return true;
  });

  await check("422", async () => {
    const { error, response } = await api.POST("/convolve", { body: { preset: "no" } });
    if (response.status !== 422 || error === undefined || typeof error.detail === "string") {
      return false;
    }
    return error.detail[0].loc.join("/") === "body/preset";
  });
  await check("400", async () => {
    const spec = { preset: "sobel-x" } as const;
    const { error, response } = await api.POST("/convolve/upload", {
      body: { spec },
      bodySerializer: multipart(spec, new Blob(["not an image"])),
    });
    return response.status === 400 && String(error?.detail).includes("not an image");
  });

  const keyed = env("KEYED_URL");
  const key = env("API_KEY");
  await check("401", async () => {
    const anonymous = createClient<paths>({ baseUrl: keyed });
    const { error, response } = await anonymous.POST("/pool", { body: { size: 2 } });
    return response.status === 401 && String(error?.detail).includes("API key");
  });
  await check("bearer", async () => {
    const client = createClient<paths>({ baseUrl: keyed, headers: { Authorization: `Bearer ${key}` } });
    return isPng((await client.POST("/pool", { body: { size: 2 }, parseAs: "arrayBuffer" })).data);
  });
  await check("x-api-key", async () => {
    const client = createClient<paths>({ baseUrl: keyed, headers: { "X-API-Key": key } });
    return isPng((await client.POST("/pool", { body: { size: 2 }, parseAs: "arrayBuffer" })).data);
  });

  console.log(JSON.stringify(results));
  process.exitCode = Object.values(results).every((result) => result === "ok") ? 0 : 1;
}

void main();
