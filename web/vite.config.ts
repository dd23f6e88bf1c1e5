import { defineConfig } from 'vite';

// The server serves dist/ at "/", so assets use root-absolute paths.
// In development, API and socket traffic goes to a local server on :8080.
const backend = 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
  },
  server: {
    proxy: {
      '/api': { target: backend, changeOrigin: true },
      '/socket.io': { target: backend, changeOrigin: true, ws: true },
    },
  },
});
