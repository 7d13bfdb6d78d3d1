<?php
// Laravel's own encrypter and PHP's bcrypt, for the Pterodactyl database-mode tests: the
// values a Pterodactyl panel stores (daemon tokens and TOTP secrets through `encrypt()`,
// password hashes through bcrypt) made by the real code, so the panel's decryption is
// checked against it. Uses Debian's php-laravel-framework (Laravel 8).
//
// stdin:  {"app_key": "base64:...", "encrypt": ["..."], "encrypt_string": ["..."],
//          "bcrypt": ["..."]}   (every list optional)
// stdout: {"encrypt": ["eyJpdiI6..."], "encrypt_string": [...], "bcrypt": ["$2y$10$..."]}
//
// `encrypt` serializes first, as Pterodactyl's `Encrypter::encrypt($value)` calls do;
// `encrypt_string` does not (Laravel's `encryptString`).

require_once 'Illuminate/Encryption/autoload.php';

use Illuminate\Encryption\Encrypter;

$input = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
$key = $input['app_key'];
if (str_starts_with($key, 'base64:')) {
    $key = base64_decode(substr($key, 7), true);
}
$encrypter = new Encrypter($key, 'AES-256-CBC');

$out = [
    'encrypt' => array_map(fn ($v) => $encrypter->encrypt($v), $input['encrypt'] ?? []),
    'encrypt_string' => array_map(
        fn ($v) => $encrypter->encryptString($v),
        $input['encrypt_string'] ?? []
    ),
    'bcrypt' => array_map(
        fn ($p) => password_hash($p, PASSWORD_BCRYPT, ['cost' => 10]),
        $input['bcrypt'] ?? []
    ),
];
echo json_encode($out, JSON_UNESCAPED_SLASHES | JSON_THROW_ON_ERROR), "\n";
