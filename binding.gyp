{
  "targets": [
    {
      "target_name": "inferzip",
      "sources": [
        "<!@(node scripts/list-sources.cjs native/core native/napi)"
      ],
      "include_dirs": ["."],
      "defines": [
        "NAPI_VERSION=9",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "INFERZIP_WITH_CUDA=0",
        "INFERZIP_BUILD_SYSTEM=\"node-gyp\""
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "# the same warning and floating-point flags as CMakeLists.txt (INFERZIP_CXX_FLAGS)": "",
      "# node-addon-api as a system header (as CMake does): its warnings are not ours": "",
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-Wall", "-Wextra", "-Wshadow", "-ffp-contract=off",
                    "-isystem<!(node -p \"require('path').resolve(require('node-addon-api').include_dir)\")"],
      "xcode_settings": {
        "GCC_ENABLE_CPP_EXCEPTIONS": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-isystem<!(node -p \"require('path').resolve(require('node-addon-api').include_dir)\")"]
      },
      "msvs_settings": { "VCCLCompilerTool": { "ExceptionHandling": 1 } },
      "conditions": [
        ["OS=='win'", { "include_dirs": ["<!(node -p \"require('path').resolve(require('node-addon-api').include_dir)\")"] }]
      ]
    }
  ]
}
