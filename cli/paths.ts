// Where qgen's own files are: the repository (or installed package) root, one folder above cli/.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
